//! The ballot paper: candidates can be added and removed only during setup.

use mysql::prelude::Queryable;
use mysql::{Transaction, TxOpts};

use super::election::locked_state;
use super::{audit, AdminSession, Failure, Store};
use crate::error::{mysql_codes, server_code, Result, VotingError};
use crate::types::{Candidate, ElectionState, Srn};

/// The ballot paper is frozen once voting opens.
fn in_setup(tx: &mut Transaction<'_>) -> Result<(), Failure> {
    let state = locked_state(tx, "LOCK IN SHARE MODE")?;
    if state != ElectionState::Setup {
        return Err(VotingError::WrongState(format!(
            "candidates can only change during setup (the election is {state})"
        ))
        .into());
    }
    Ok(())
}

impl Store {
    /// Puts a candidate on the ballot.
    ///
    /// Errors: `duplicate`, `wrong_state` (not in setup), `invalid_input`.
    pub fn add_candidate(&self, admin: &AdminSession, candidate: &Candidate) -> Result<Candidate> {
        let candidate = candidate.clone().validated()?;
        self.transaction(TxOpts::default(), |tx| {
            in_setup(tx)?;
            let inserted = tx.exec_drop(
                "INSERT INTO candidates (srn, name, affiliation) VALUES (?, ?, ?)",
                (
                    candidate.srn.as_str(),
                    &candidate.name,
                    &candidate.affiliation,
                ),
            );
            if let Err(e) = inserted {
                if server_code(&e) == Some(mysql_codes::DUP_ENTRY) {
                    return Err(
                        VotingError::Duplicate(format!("candidate {}", candidate.srn)).into(),
                    );
                }
                return Err(e.into());
            }
            audit(tx, &admin.actor(), "candidate.add", candidate.srn.as_str())?;
            Ok(())
        })?;
        Ok(candidate)
    }

    /// Takes a candidate off the ballot (setup only).
    pub fn remove_candidate(&self, admin: &AdminSession, srn: &Srn) -> Result<()> {
        self.transaction(TxOpts::default(), |tx| {
            in_setup(tx)?;
            tx.exec_drop("DELETE FROM candidates WHERE srn = ?", (srn.as_str(),))?;
            if tx.affected_rows() != 1 {
                return Err(VotingError::NotFound(format!("candidate {srn}")).into());
            }
            audit(tx, &admin.actor(), "candidate.remove", srn.as_str())?;
            Ok(())
        })
    }

    /// The ballot paper, ordered by SRN.
    pub fn list_candidates(&self) -> Result<Vec<Candidate>> {
        let rows: Vec<(String, String, Option<String>)> = self
            .conn()?
            .query("SELECT srn, name, affiliation FROM candidates ORDER BY srn")?;
        rows.into_iter()
            .map(|(srn, name, affiliation)| {
                Ok(Candidate {
                    srn: Srn::parse(&srn)?,
                    name,
                    affiliation,
                })
            })
            .collect()
    }
}
