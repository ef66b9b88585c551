//! Sealing: chaining committed ballots in order, shortly after they commit, and
//! checking both chains; the publication of a closed election.
//!
//! A vote's own transaction never touches the chain: it inserts an unsealed
//! ballot (no `seq`). Right after the commit, the caster makes sure a *sealing
//! round* runs: one short transaction that locks the ballot chain's head row and
//! chains every committed unsealed ballot, in id order, after it. Concurrent
//! casters in one process share rounds (the first to arrive seals everybody's
//! ballots; the others only wait for it), and the head row's lock orders the
//! rounds of all server instances. So votes do not queue behind one lock while
//! they commit; only the sealing, which is cheap and batched, is serialized.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use mysql::prelude::Queryable;
use mysql::{AccessMode, IsolationLevel, Transaction, TxOpts};

use super::{rfc3339, AdminSession, Store};
use crate::error::{Result, VotingError};
use crate::integrity::{
    ballot_link, check_chain, to_hex, BallotSeal, ChainCheck, ChainHead, LinkContent, Publication,
    PublishedAuditEntry, PublishedBallot, StoredLink, GENESIS, PUBLICATION_FORMAT,
};
use crate::types::{ElectionState, Srn};

/// Name of the ballot chain's row in `chain_heads`.
pub(crate) const BALLOT_CHAIN: &str = "ballots";
/// Name of the audit chain's row in `chain_heads`.
pub(crate) const AUDIT_CHAIN: &str = "audit";

/// Ballots chained per sealing transaction (a round runs as many as it needs).
const SEAL_BATCH: usize = 500;

/// This process's sealing rounds: one at a time, counted.
#[derive(Debug, Default)]
pub(crate) struct Sealer {
    started: AtomicU64,
    /// Held while a round runs; holds the seals rounds gave out that their
    /// casters have not picked up yet (saves each caster a query).
    running: Mutex<HashMap<u64, BallotSeal>>,
}

/// Seals kept for pickup at most; beyond this (ballots of other instances'
/// casters, who never ask here) the map is cleared and casters query instead.
const PICKUP_MAX: usize = 4096;

fn hash32(bytes: &[u8]) -> [u8; 32] {
    // A stored hash of the wrong length cannot match anything: it reads as zeros
    // and the chain check reports the link.
    bytes.try_into().unwrap_or(GENESIS)
}

/// Locks a chain's head row and reads it (length, last hash).
pub(crate) fn locked_head(tx: &mut Transaction<'_>, chain: &str) -> mysql::Result<(u64, [u8; 32])> {
    let row: Option<(u64, Vec<u8>)> = tx.exec_first(
        "SELECT length, head FROM chain_heads WHERE chain = ? FOR UPDATE",
        (chain,),
    )?;
    Ok(row.map_or((0, GENESIS), |(n, h)| (n, hash32(&h))))
}

/// Records a chain's new head (inserting the row if the schema predates it).
pub(crate) fn set_head(
    tx: &mut Transaction<'_>,
    chain: &str,
    length: u64,
    head: &[u8; 32],
) -> mysql::Result<()> {
    tx.exec_drop(
        "INSERT INTO chain_heads (chain, length, head) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE length = VALUES(length), head = VALUES(head)",
        (chain, length, &head[..]),
    )
}

fn read_head(tx: &mut Transaction<'_>, chain: &str) -> mysql::Result<(u64, [u8; 32])> {
    let row: Option<(u64, Vec<u8>)> = tx.exec_first(
        "SELECT length, head FROM chain_heads WHERE chain = ?",
        (chain,),
    )?;
    Ok(row.map_or((0, GENESIS), |(n, h)| (n, hash32(&h))))
}

fn snapshot() -> TxOpts {
    TxOpts::default()
        .set_with_consistent_snapshot(true)
        .set_access_mode(Some(AccessMode::ReadOnly))
}

impl Store {
    /// Chains every committed, not yet sealed ballot; returns how many it sealed.
    ///
    /// Runs in READ COMMITTED: it sees every ballot committed before each
    /// statement, and takes no gap locks, so votes keep committing meanwhile.
    pub fn seal_pending(&self) -> Result<u64> {
        Ok(self.seal_round()?.len() as u64)
    }

    /// One round: seals everything committed and unsealed; returns the seals
    /// given, by ballot id.
    fn seal_round(&self) -> Result<Vec<(u64, BallotSeal)>> {
        let opts = TxOpts::default().set_isolation_level(Some(IsolationLevel::ReadCommitted));
        let mut sealed = Vec::new();
        loop {
            let batch = self.transaction(opts, |tx| {
                let (length, mut prev) = locked_head(tx, BALLOT_CHAIN)?;
                let pending: Vec<(u64, String, Vec<u8>)> = tx.exec(
                    "SELECT id, candidate_srn, receipt_hash FROM ballots \
                     WHERE seq IS NULL ORDER BY id LIMIT ?",
                    (SEAL_BATCH as u64,),
                )?;
                let mut seq = length;
                let mut links = Vec::with_capacity(pending.len());
                let mut seals = Vec::with_capacity(pending.len());
                for (id, candidate, receipt_hash) in &pending {
                    seq += 1;
                    prev = ballot_link(&prev, seq, candidate, &hash32(receipt_hash));
                    links.push((seq, prev.to_vec(), *id));
                    let chain_hash = to_hex(&prev);
                    seals.push((*id, BallotSeal { seq, chain_hash }));
                }
                if !links.is_empty() {
                    store_links(tx, &links)?;
                    set_head(tx, BALLOT_CHAIN, seq, &prev)?;
                }
                Ok(seals)
            })?;
            let full = batch.len() == SEAL_BATCH;
            sealed.extend(batch);
            if !full {
                return Ok(sealed);
            }
        }
    }

    /// Makes sure a sealing round starts after this call (waiting for one, or
    /// running one), then takes the seals of `ids` that rounds handed out, in
    /// the order of `ids` (`None`: not handed out here; ask the table). The
    /// ballots must have committed before the call. One call serves a whole
    /// batch of casts (store/batch.rs).
    pub(crate) fn seal_and_pick_up(&self, ids: &[u64]) -> Result<Vec<Option<BallotSeal>>> {
        // A round that *starts* after this point sees the ballots (they
        // committed before): wait for one, or run one.
        let seen = self.sealer.started.load(Ordering::SeqCst);
        let mut pickup = self
            .sealer
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.sealer.started.load(Ordering::SeqCst) == seen {
            self.sealer.started.fetch_add(1, Ordering::SeqCst);
            let seals = self.seal_round()?;
            if pickup.len() + seals.len() > PICKUP_MAX {
                pickup.clear();
            }
            pickup.extend(seals);
        }
        Ok(ids.iter().map(|id| pickup.remove(id)).collect())
    }

    /// The seal of a committed ballot, sealing it (and everything committed
    /// before it) first when needed.
    pub(crate) fn seal_ballot(&self, ballot_id: u64) -> Result<BallotSeal> {
        if let Some(seal) = self.seal_and_pick_up(&[ballot_id])?.pop().flatten() {
            return Ok(seal);
        }
        let row: Option<(Option<u64>, Option<Vec<u8>>)> = self.conn()?.exec_first(
            "SELECT seq, chain_hash FROM ballots WHERE id = ?",
            (ballot_id,),
        )?;
        match row {
            Some((Some(seq), Some(hash))) => Ok(BallotSeal {
                seq,
                chain_hash: to_hex(&hash32(&hash)),
            }),
            Some(_) => Err(VotingError::Internal(format!(
                "ballot {ballot_id} was not sealed by a round that started after it committed"
            ))),
            None => Err(VotingError::NotFound(format!("ballot {ballot_id}"))),
        }
    }

    /// Recomputes the ballot chain from the first ballot to the recorded head.
    pub fn check_ballot_chain(&self) -> Result<ChainCheck> {
        self.transaction(snapshot(), |tx| {
            let (length, head) = read_head(tx, BALLOT_CHAIN)?;
            let links = ballot_links(tx)?;
            Ok(check_chain("ballot", links, length, &head))
        })
    }

    /// Recomputes the audit chain from the first line to the recorded head.
    pub fn check_audit_chain(&self, _admin: &AdminSession) -> Result<ChainCheck> {
        self.transaction(snapshot(), |tx| {
            let (length, head) = read_head(tx, AUDIT_CHAIN)?;
            let links = audit_entries(tx)?.into_iter().map(audit_link);
            Ok(check_chain("audit line", links, length, &head))
        })
    }

    /// Everything to publish about a closed election: the final tally, every
    /// ballot (sequence, candidate, receipt hash, chain hash; no voter identity),
    /// the audit log and both chain heads, read in one snapshot.
    ///
    /// Errors: `wrong_state` until the election is closed (a ballot list
    /// published during voting would show the running order of the votes).
    pub fn publication(&self, _admin: &AdminSession) -> Result<Publication> {
        if self.election_state()? != ElectionState::Closed {
            return Err(VotingError::WrongState(
                "the ballot list is published only once the election is closed".into(),
            ));
        }
        // Ballots that committed just before the close may still be unsealed.
        self.seal_pending()?;
        let tally = self.tally()?;
        self.transaction(snapshot(), |tx| {
            let (opened_at, closed_at): (Option<String>, Option<String>) = tx
                .query_first(format!(
                    "SELECT {}, {} FROM election WHERE id = 1",
                    rfc3339("opened_at"),
                    rfc3339("closed_at")
                ))?
                .unwrap_or_default();
            let rows: Vec<(u64, String, Vec<u8>, Vec<u8>)> = tx.query(
                "SELECT seq, candidate_srn, receipt_hash, chain_hash FROM ballots \
                 WHERE seq IS NOT NULL ORDER BY seq",
            )?;
            let mut ballots = Vec::with_capacity(rows.len());
            for (seq, candidate, receipt_hash, chain_hash) in rows {
                ballots.push(PublishedBallot {
                    seq,
                    candidate: Srn::parse(&candidate)?,
                    receipt_hash: hex::encode(receipt_hash),
                    chain_hash: hex::encode(chain_hash),
                });
            }
            let (ballot_len, ballot_head) = read_head(tx, BALLOT_CHAIN)?;
            let (audit_len, audit_head) = read_head(tx, AUDIT_CHAIN)?;
            Ok(Publication {
                format: PUBLICATION_FORMAT.into(),
                opened_at,
                closed_at,
                tally: tally.clone(),
                ballots,
                ballot_chain: ChainHead {
                    length: ballot_len,
                    head: to_hex(&ballot_head),
                },
                audit: audit_entries(tx)?,
                audit_chain: ChainHead {
                    length: audit_len,
                    head: to_hex(&audit_head),
                },
            })
        })
    }
}

/// Writes `(seq, chain_hash, id)` links with a few multi-row `UPDATE`s (one per
/// power-of-two chunk, so the statement texts stay few and prepared) instead of
/// one round trip per ballot.
fn store_links(tx: &mut Transaction<'_>, links: &[(u64, Vec<u8>, u64)]) -> mysql::Result<()> {
    let mut rest = links;
    while !rest.is_empty() {
        let chunk = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
        let (now, later) = rest.split_at(chunk);
        let whens = vec!["WHEN ? THEN ?"; chunk].join(" ");
        let sql = format!(
            "UPDATE ballots SET seq = CASE id {whens} END, chain_hash = CASE id {whens} END \
             WHERE id IN ({})",
            vec!["?"; chunk].join(", ")
        );
        let mut params: Vec<mysql::Value> = Vec::with_capacity(5 * chunk);
        params.extend(
            now.iter()
                .flat_map(|(seq, _, id)| [(*id).into(), (*seq).into()]),
        );
        params.extend(
            now.iter()
                .flat_map(|(_, hash, id)| [(*id).into(), hash.as_slice().into()]),
        );
        params.extend(now.iter().map(|(_, _, id)| mysql::Value::from(*id)));
        tx.exec_drop(sql, params)?;
        rest = later;
    }
    Ok(())
}

fn ballot_links(tx: &mut Transaction<'_>) -> mysql::Result<Vec<StoredLink>> {
    let rows: Vec<(u64, String, Vec<u8>, Vec<u8>)> = tx.query(
        "SELECT seq, candidate_srn, receipt_hash, chain_hash FROM ballots \
         WHERE seq IS NOT NULL ORDER BY seq",
    )?;
    Ok(rows
        .into_iter()
        .map(|(seq, candidate, receipt_hash, stored)| StoredLink {
            seq,
            content: LinkContent::Ballot {
                candidate,
                receipt_hash: hash32(&receipt_hash),
            },
            stored: hash32(&stored),
        })
        .collect())
}

fn audit_entries(tx: &mut Transaction<'_>) -> mysql::Result<Vec<PublishedAuditEntry>> {
    let rows: Vec<(u64, String, String, String, String, Vec<u8>)> = tx.query(format!(
        "SELECT seq, {}, actor, action, detail, chain_hash FROM audit_log ORDER BY seq",
        rfc3339("at")
    ))?;
    Ok(rows
        .into_iter()
        .map(
            |(seq, at, actor, action, detail, chain_hash)| PublishedAuditEntry {
                seq,
                at,
                actor,
                action,
                detail,
                chain_hash: hex::encode(chain_hash),
            },
        )
        .collect())
}

fn audit_link(e: PublishedAuditEntry) -> StoredLink {
    StoredLink {
        seq: e.seq,
        stored: crate::integrity::from_hex(&e.chain_hash).unwrap_or(GENESIS),
        content: LinkContent::Audit {
            at: e.at,
            actor: e.actor,
            action: e.action,
            detail: e.detail,
        },
    }
}
