//! Casting a ballot (one voter, one vote, in one transaction) and checking a receipt.

use mysql::prelude::Queryable;
use mysql::TxOpts;

use super::election::locked_state;
use super::{Failure, Store, VoterSession};
use crate::credentials::{generate_receipt, receipt_hash, Secret};
use crate::error::{Result, VotingError};
use crate::integrity::BallotSeal;
use crate::types::{ElectionState, ReceiptCheck, Srn};

/// What a voter gets back for a counted ballot.
#[derive(Debug, Clone)]
pub struct CastReceipt {
    /// The receipt code, shown once: with it anyone can later check that this
    /// ballot is counted, and for whom. Only its hash is stored.
    pub receipt: Secret,
    /// The ballot's position in the box.
    pub ballot_id: u64,
    /// The candidate the ballot counts for.
    pub candidate: Srn,
    /// Where the ballot sits in the ballot chain, and the chain hash after it: the
    /// voter writes down [`BallotSeal::short`] with the receipt. `None` only if
    /// sealing failed after the vote committed (the vote counts; a later
    /// [`Store::verify_receipt`] gives the seal).
    pub seal: Option<BallotSeal>,
}

impl Store {
    /// Casts `voter`'s ballot for `candidate`.
    ///
    /// One transaction marks the voter as voted (only if they had not) and puts an
    /// anonymous ballot in the box: both happen or neither does. The receipt is
    /// returned only after the commit.
    ///
    /// Errors: `election_not_open`, `unknown_candidate`, `not_eligible` (removed from
    /// the roll), `already_voted`, `database_unavailable`.
    pub fn cast_vote(&self, voter: &VoterSession, candidate: &Srn) -> Result<CastReceipt> {
        let receipt = generate_receipt()?;
        let hash = receipt_hash(receipt.expose());
        let srn = voter.srn();
        let ballot_id = self.transaction(TxOpts::default(), |tx| {
            // A shared lock: votes don't wait for each other, but a close waits for
            // every vote in flight, and no vote commits after it.
            let state = locked_state(tx, "LOCK IN SHARE MODE")?;
            if state != ElectionState::Open {
                return Err(VotingError::ElectionNotOpen(state).into());
            }
            let standing: Option<u8> = tx.exec_first(
                "SELECT 1 FROM candidates WHERE srn = ?",
                (candidate.as_str(),),
            )?;
            if standing.is_none() {
                return Err(VotingError::UnknownCandidate(candidate.to_string()).into());
            }
            // The row lock taken here is what makes one voter, one vote: a second
            // attempt waits for this one and then finds `voted` already set.
            tx.exec_drop(
                "UPDATE voters SET voted = TRUE WHERE srn = ? AND NOT voted",
                (srn.as_str(),),
            )?;
            if tx.affected_rows() != 1 {
                // A locking read: under REPEATABLE READ a plain SELECT would see this
                // transaction's snapshot, taken before a racing vote committed, and
                // report the voter as missing from the roll.
                let voted: Option<bool> = tx.exec_first(
                    "SELECT voted FROM voters WHERE srn = ? LOCK IN SHARE MODE",
                    (srn.as_str(),),
                )?;
                return Err(match voted {
                    Some(true) => VotingError::AlreadyVoted(srn.clone()),
                    _ => VotingError::NotEligible(srn.clone()),
                }
                .into());
            }
            tx.exec_drop(
                "INSERT INTO ballots (candidate_srn, receipt_hash) VALUES (?, ?)",
                (candidate.as_str(), &hash[..]),
            )?;
            tx.last_insert_id()
                .ok_or_else(|| Failure::Rule(VotingError::Internal("no ballot id".into())))
        })?;
        // The vote has committed: from here on, nothing may turn it into an error.
        let seal = self
            .seal_ballot(ballot_id)
            .inspect_err(|e| log::warn!("ballot {ballot_id} committed but not sealed yet: {e}"))
            .ok();
        Ok(CastReceipt {
            receipt,
            ballot_id,
            candidate: candidate.clone(),
            seal,
        })
    }

    /// Finds the ballot a receipt belongs to, with its place in the ballot chain,
    /// and recomputes the whole chain. Anyone holding the receipt may ask: the
    /// receipt itself (140 random bits) is the authorization.
    ///
    /// A broken chain is not an error: the check says where it breaks
    /// ([`ReceiptCheck::chain`]). Errors: `not_found` when no ballot carries this
    /// receipt.
    pub fn verify_receipt(&self, receipt: &str) -> Result<ReceiptCheck> {
        let hash = receipt_hash(receipt);
        let row: Option<(u64, String)> = self.conn()?.exec_first(
            "SELECT id, candidate_srn FROM ballots WHERE receipt_hash = ?",
            (&hash[..],),
        )?;
        let (ballot_id, candidate) =
            row.ok_or_else(|| VotingError::NotFound("ballot with this receipt".into()))?;
        let seal = self.seal_ballot(ballot_id)?;
        Ok(ReceiptCheck {
            ballot_id,
            candidate: Srn::parse(&candidate)?,
            seal: Some(seal),
            chain: Some(self.check_ballot_chain()?),
        })
    }
}
