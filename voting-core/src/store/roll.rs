//! The electoral roll: adding, removing and listing voters, their credentials, bulk
//! import, and a voter's own eligibility.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use mysql::prelude::Queryable;
use mysql::{Transaction, TxOpts, Value};

use super::election::locked_state;
use super::{audit, AdminSession, Failure, Store, VoterSession};
use crate::credentials::{
    generate_voter_credential, hash_secret, normalize_code, HashCost, Secret,
};
use crate::error::{mysql_codes, server_code, Result, VotingError};
use crate::types::{Date, ElectionState, Eligibility, NewVoter, Srn, Voter};

/// A voter put on the roll by [`Store::import_voters`], with the credential to hand them.
#[derive(Debug, Clone)]
pub struct ImportedVoter {
    /// The voter's SRN.
    pub srn: Srn,
    /// The generated credential, shown once.
    pub credential: Secret,
}

/// Rows per multi-row INSERT during an import.
const IMPORT_CHUNK: usize = 500;

/// Most voters one import may carry (bounds the server's memory per request).
pub const IMPORT_MAX_VOTERS: usize = 200_000;

/// The roll may change until the election closes.
fn roll_open(tx: &mut Transaction<'_>) -> Result<(), Failure> {
    let state = locked_state(tx, "LOCK IN SHARE MODE")?;
    if state == ElectionState::Closed {
        return Err(
            VotingError::WrongState("the election is closed: the roll is frozen".into()).into(),
        );
    }
    Ok(())
}

fn voter_hash(credential: &Secret) -> Result<String> {
    hash_secret(&normalize_code(credential.expose()), HashCost::VOTER)
}

impl Store {
    /// Puts a voter on the roll and returns their generated credential (shown once).
    ///
    /// Errors: `duplicate`, `wrong_state` (election closed), `invalid_input`.
    pub fn add_voter(&self, admin: &AdminSession, voter: &NewVoter) -> Result<Secret> {
        let voter = voter.clone().validated()?;
        let credential = generate_voter_credential()?;
        let hash = {
            let _permit = self.hashing.acquire();
            voter_hash(&credential)?
        };
        self.transaction(TxOpts::default(), |tx| {
            roll_open(tx)?;
            let inserted = tx.exec_drop(
                "INSERT INTO voters (srn, first_name, last_name, dob, credential_hash) VALUES (?, ?, ?, ?, ?)",
                (
                    voter.srn.as_str(),
                    &voter.first_name,
                    &voter.last_name,
                    voter.dob.map(|d| d.to_string()),
                    &hash,
                ),
            );
            if let Err(e) = inserted {
                if server_code(&e) == Some(mysql_codes::DUP_ENTRY) {
                    return Err(VotingError::Duplicate(format!("voter {}", voter.srn)).into());
                }
                return Err(e.into());
            }
            audit(tx, &admin.actor(), "voter.add", voter.srn.as_str())?;
            Ok(())
        })?;
        Ok(credential)
    }

    /// Takes a voter off the roll. A voter who has voted stays (`already_voted`).
    pub fn remove_voter(&self, admin: &AdminSession, srn: &Srn) -> Result<()> {
        self.transaction(TxOpts::default(), |tx| {
            roll_open(tx)?;
            let voted: Option<bool> = tx.exec_first(
                "SELECT voted FROM voters WHERE srn = ? FOR UPDATE",
                (srn.as_str(),),
            )?;
            match voted {
                None => return Err(VotingError::NotFound(format!("voter {srn}")).into()),
                Some(true) => {
                    return Err(VotingError::AlreadyVoted(srn.clone()).into());
                }
                Some(false) => {}
            }
            tx.exec_drop("DELETE FROM voters WHERE srn = ?", (srn.as_str(),))?;
            audit(tx, &admin.actor(), "voter.remove", srn.as_str())?;
            Ok(())
        })
    }

    /// Replaces a voter's credential (the old one stops working) and returns the new one.
    pub fn reset_credential(&self, admin: &AdminSession, srn: &Srn) -> Result<Secret> {
        let credential = generate_voter_credential()?;
        let hash = {
            let _permit = self.hashing.acquire();
            voter_hash(&credential)?
        };
        self.transaction(TxOpts::default(), |tx| {
            roll_open(tx)?;
            tx.exec_drop(
                "UPDATE voters SET credential_hash = ? WHERE srn = ?",
                (&hash, srn.as_str()),
            )?;
            if tx.affected_rows() != 1 {
                return Err(VotingError::NotFound(format!("voter {srn}")).into());
            }
            tx.exec_drop(
                "DELETE FROM login_failures WHERE account = ?",
                (format!("voter:{srn}"),),
            )?;
            audit(tx, &admin.actor(), "voter.reset_credential", srn.as_str())?;
            Ok(())
        })?;
        Ok(credential)
    }

    /// The whole roll, ordered by SRN.
    pub fn list_voters(&self, _admin: &AdminSession) -> Result<Vec<Voter>> {
        let rows: Vec<(String, String, String, Option<String>, bool)> = self.conn()?.query(
            "SELECT srn, first_name, last_name, DATE_FORMAT(dob, '%Y-%m-%d'), voted FROM voters ORDER BY srn",
        )?;
        rows.into_iter()
            .map(|(srn, first_name, last_name, dob, voted)| {
                Ok(Voter {
                    srn: Srn::parse(&srn)?,
                    first_name,
                    last_name,
                    dob: dob.as_deref().map(Date::parse).transpose()?,
                    voted,
                })
            })
            .collect()
    }

    /// What the signed-in voter may do now.
    pub fn eligibility(&self, voter: &VoterSession) -> Result<Eligibility> {
        let row: Option<(Option<bool>, String)> = self.conn()?.exec_first(
            "SELECT (SELECT voted FROM voters WHERE srn = ?), state FROM election WHERE id = 1",
            (voter.srn().as_str(),),
        )?;
        let (voted, state) =
            row.ok_or_else(|| VotingError::Internal("the election row is missing".into()))?;
        Ok(match (voted, ElectionState::from_db(&state)?) {
            (None, _) => Eligibility::NotOnRoll,
            (Some(true), _) => Eligibility::AlreadyVoted,
            (Some(false), ElectionState::Open) => Eligibility::Eligible,
            (Some(false), _) => Eligibility::ElectionNotOpen,
        })
    }

    /// Puts many voters on the roll at once: all of them or none. Credentials are
    /// generated and hashed on every core first (`progress(done, total)` reports
    /// that work), then the roll is written in one transaction.
    ///
    /// Errors: `invalid_input` (empty, too many, or an SRN twice in the list),
    /// `duplicate` (an SRN already on the roll), `wrong_state`.
    pub fn import_voters(
        &self,
        admin: &AdminSession,
        voters: &[NewVoter],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<ImportedVoter>> {
        if voters.is_empty() || voters.len() > IMPORT_MAX_VOTERS {
            return Err(VotingError::invalid(format!(
                "an import holds 1 to {IMPORT_MAX_VOTERS} voters"
            )));
        }
        let mut seen = HashSet::with_capacity(voters.len());
        let mut clean = Vec::with_capacity(voters.len());
        for (i, v) in voters.iter().enumerate() {
            let v = v
                .clone()
                .validated()
                .map_err(|e| VotingError::invalid(format!("voter {} ({}): {e}", i + 1, v.srn)))?;
            if !seen.insert(v.srn.clone()) {
                return Err(VotingError::invalid(format!(
                    "voter {} ({}) appears twice in the list",
                    i + 1,
                    v.srn
                )));
            }
            clean.push(v);
        }
        self.reject_existing(&clean)?;
        let credentials = self.hash_credentials(clean.len(), progress)?;
        self.transaction(TxOpts::default(), |tx| {
            roll_open(tx)?;
            for (rows, creds) in clean.chunks(IMPORT_CHUNK).zip(credentials.chunks(IMPORT_CHUNK)) {
                let placeholders = vec!["(?, ?, ?, ?, ?)"; rows.len()].join(", ");
                let mut params: Vec<Value> = Vec::with_capacity(rows.len() * 5);
                for (v, (_, hash)) in rows.iter().zip(creds) {
                    params.push(v.srn.as_str().into());
                    params.push(v.first_name.as_str().into());
                    params.push(v.last_name.as_str().into());
                    params.push(v.dob.map(|d| d.to_string()).into());
                    params.push(hash.as_str().into());
                }
                let sql = format!(
                    "INSERT INTO voters (srn, first_name, last_name, dob, credential_hash) VALUES {placeholders}"
                );
                if let Err(e) = tx.exec_drop(sql, params) {
                    if server_code(&e) == Some(mysql_codes::DUP_ENTRY) {
                        return Err(VotingError::Duplicate(
                            "a voter in the list (added meanwhile)".into(),
                        )
                        .into());
                    }
                    return Err(e.into());
                }
            }
            audit(tx, &admin.actor(), "voter.import", &format!("{} voters", clean.len()))?;
            Ok(())
        })?;
        Ok(clean
            .into_iter()
            .zip(credentials)
            .map(|(v, (credential, _))| ImportedVoter {
                srn: v.srn,
                credential,
            })
            .collect())
    }

    /// Fails with `duplicate`, naming up to ten SRNs, if any voter is already on the roll.
    fn reject_existing(&self, voters: &[NewVoter]) -> Result<()> {
        let mut conn = self.conn()?;
        let mut taken = Vec::new();
        for chunk in voters.chunks(IMPORT_CHUNK) {
            let sql = format!(
                "SELECT srn FROM voters WHERE srn IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let params: Vec<Value> = chunk.iter().map(|v| v.srn.as_str().into()).collect();
            let found: Vec<String> = conn.exec(sql, params)?;
            taken.extend(found);
        }
        if taken.is_empty() {
            return Ok(());
        }
        let shown: Vec<_> = taken.iter().take(10).map(String::as_str).collect();
        let more = taken.len().saturating_sub(10);
        let suffix = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        // Reads as "<this> already exists".
        let which = match taken.len() {
            1 => "an SRN of the import".to_string(),
            n => format!("each of {n} SRNs of the import"),
        };
        Err(VotingError::Duplicate(format!(
            "on the roll, {which} ({}{suffix})",
            shown.join(", ")
        )))
    }

    /// Generates `n` credentials and hashes them on as many threads as there are
    /// hashing slots; returns (credential, PHC hash) pairs in order.
    fn hash_credentials(
        &self,
        n: usize,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<(Secret, String)>> {
        let credentials = (0..n)
            .map(|_| generate_voter_credential())
            .collect::<Result<Vec<_>>>()?;
        let next = AtomicUsize::new(0);
        let (tx, rx) = mpsc::channel::<(usize, Result<String>)>();
        let mut hashes: Vec<Option<String>> = vec![None; n];
        std::thread::scope(|scope| {
            for _ in 0..self.hashing.permits() {
                let tx = tx.clone();
                let (next, credentials) = (&next, &credentials);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(c) = credentials.get(i) else { break };
                    let hash = {
                        let _permit = self.hashing.acquire();
                        voter_hash(c)
                    };
                    if tx.send((i, hash)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut done = 0;
            for (i, hash) in rx {
                hashes[i] = Some(hash?);
                done += 1;
                if done % 64 == 0 || done == n {
                    progress(done, n);
                }
            }
            Ok::<_, VotingError>(())
        })?;
        credentials
            .into_iter()
            .zip(hashes)
            .map(|(c, h)| {
                h.map(|h| (c, h))
                    .ok_or_else(|| VotingError::Internal("a credential was not hashed".into()))
            })
            .collect()
    }
}
