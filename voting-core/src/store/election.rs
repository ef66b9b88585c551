//! The election's lifecycle (setup → open → closed), its status and the tally.

use mysql::prelude::Queryable;
use mysql::{AccessMode, Transaction, TxOpts};

use super::{audit, rfc3339, AdminSession, Failure, Store};
use crate::error::{Result, VotingError};
use crate::types::{CandidateCount, ElectionState, ElectionStatus, Srn, Tally};

/// A cheap fingerprint of everything a tally shows: it changes whenever a ballot
/// is cast or an admin acts (every admin action writes an audit line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeToken {
    last_ballot: u64,
    last_audit: u64,
}

/// Reads the state, taking a lock of the given kind on the election row.
pub(crate) fn locked_state(tx: &mut Transaction<'_>, lock: &str) -> Result<ElectionState, Failure> {
    let state: Option<String> =
        tx.query_first(format!("SELECT state FROM election WHERE id = 1 {lock}"))?;
    let state = state.ok_or_else(|| {
        VotingError::Internal("the election row is missing: run `voting db init`".into())
    })?;
    Ok(ElectionState::from_db(&state)?)
}

fn read_only() -> TxOpts {
    TxOpts::default()
        .set_with_consistent_snapshot(true)
        .set_access_mode(Some(AccessMode::ReadOnly))
}

impl Store {
    /// The current lifecycle state.
    pub fn election_state(&self) -> Result<ElectionState> {
        self.transaction(read_only(), |tx| locked_state(tx, ""))
    }

    /// State and counts, read in one snapshot.
    pub fn election_status(&self) -> Result<ElectionStatus> {
        self.transaction(read_only(), |tx| {
            let row: Option<(String, Option<String>, Option<String>)> = tx.query_first(format!(
                "SELECT state, {}, {} FROM election WHERE id = 1",
                rfc3339("opened_at"),
                rfc3339("closed_at")
            ))?;
            let (state, opened_at, closed_at) =
                row.ok_or_else(|| VotingError::Internal("the election row is missing".into()))?;
            let (candidates, voters, voted): (u64, u64, u64) = tx
                .query_first(
                    "SELECT (SELECT COUNT(*) FROM candidates), (SELECT COUNT(*) FROM voters), \
                     (SELECT COUNT(*) FROM voters WHERE voted)",
                )?
                .unwrap_or_default();
            Ok(ElectionStatus {
                state: ElectionState::from_db(&state)?,
                candidates,
                voters,
                voted,
                opened_at,
                closed_at,
            })
        })
    }

    /// Opens voting. Only from `setup`, and only with at least one candidate.
    pub fn open_election(&self, admin: &AdminSession) -> Result<ElectionStatus> {
        self.transaction(TxOpts::default(), |tx| {
            let state = locked_state(tx, "FOR UPDATE")?;
            if state != ElectionState::Setup {
                return Err(VotingError::WrongState(format!(
                    "the election can only be opened from setup (it is {state})"
                ))
                .into());
            }
            let candidates: Option<u64> = tx.query_first("SELECT COUNT(*) FROM candidates")?;
            if candidates.unwrap_or(0) == 0 {
                return Err(VotingError::WrongState(
                    "add at least one candidate before opening the election".into(),
                )
                .into());
            }
            tx.query_drop(
                "UPDATE election SET state = 'open', opened_at = UTC_TIMESTAMP(6) WHERE id = 1",
            )?;
            audit(tx, &admin.actor(), "election.open", "")?;
            Ok(())
        })?;
        log::info!("election opened by {}", admin.name());
        self.election_status()
    }

    /// Closes voting for good. Waits for ballots being cast right now: they hold a
    /// shared lock on the election row, so none commits after the close.
    pub fn close_election(&self, admin: &AdminSession) -> Result<ElectionStatus> {
        self.transaction(TxOpts::default(), |tx| {
            let state = locked_state(tx, "FOR UPDATE")?;
            if state != ElectionState::Open {
                return Err(VotingError::WrongState(format!(
                    "only an open election can be closed (it is {state})"
                ))
                .into());
            }
            tx.query_drop(
                "UPDATE election SET state = 'closed', closed_at = UTC_TIMESTAMP(6) WHERE id = 1",
            )?;
            audit(tx, &admin.actor(), "election.close", "")?;
            Ok(())
        })?;
        log::info!("election closed by {}", admin.name());
        // Seal the last ballots now, so the chain head is final at the close.
        if let Err(e) = self.seal_pending() {
            log::warn!("sealing after the close failed (the next receipt check or publication retries): {e}");
        }
        self.election_status()
    }

    /// Counts the ballots per candidate, in one consistent snapshot with the
    /// roll's counts.
    pub fn tally(&self) -> Result<Tally> {
        self.transaction(read_only(), |tx| {
            let state = locked_state(tx, "")?;
            let rows: Vec<(String, String, Option<String>, u64)> = tx.query(
                "SELECT c.srn, c.name, c.affiliation, \
                 (SELECT COUNT(*) FROM ballots b WHERE b.candidate_srn = c.srn) \
                 FROM candidates c ORDER BY c.srn",
            )?;
            let (ballots, voters, voted): (u64, u64, u64) = tx
                .query_first(
                    "SELECT (SELECT COUNT(*) FROM ballots), (SELECT COUNT(*) FROM voters), \
                     (SELECT COUNT(*) FROM voters WHERE voted)",
                )?
                .unwrap_or_default();
            let mut candidates = Vec::with_capacity(rows.len());
            for (srn, name, affiliation, votes) in rows {
                candidates.push(CandidateCount {
                    srn: Srn::parse(&srn)?,
                    name,
                    affiliation,
                    votes,
                });
            }
            Ok(Tally {
                state,
                candidates,
                ballots,
                voters,
                voted,
            })
        })
    }

    /// The current [`ChangeToken`]: two index look-ups, cheap enough to poll.
    pub fn change_token(&self) -> Result<ChangeToken> {
        let row: Option<(u64, u64)> = self.conn()?.query_first(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM ballots), \
             (SELECT COALESCE(MAX(id), 0) FROM audit_log)",
        )?;
        let (last_ballot, last_audit) = row.unwrap_or_default();
        Ok(ChangeToken {
            last_ballot,
            last_audit,
        })
    }
}
