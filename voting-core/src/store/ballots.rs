//! Casting a ballot (one voter, one vote, in one transaction) and checking a receipt.

use mysql::prelude::Queryable;

use super::batch::CastRequest;
use super::{Store, VoterSession};
use crate::credentials::{generate_receipt, receipt_hash, Secret};
use crate::error::{Result, VotingError};
use crate::integrity::BallotSeal;
use crate::types::{ReceiptCheck, Srn};

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
    /// the roll), `already_voted`, `bad_credentials` (the credential was reset since
    /// the voter signed in), `database_unavailable`.
    pub fn cast_vote(&self, voter: &VoterSession, candidate: &Srn) -> Result<CastReceipt> {
        let receipt = generate_receipt()?;
        let hash = receipt_hash(receipt.expose());
        // Concurrent casts of this process share a transaction (store/batch.rs);
        // this returns once the one holding this vote has committed, and the
        // ballot has been sealed (`seal` is `None` only if sealing failed after
        // the commit: the vote counts, and a later `verify_receipt` seals it).
        let (ballot_id, seal) = self.casts.cast(
            self,
            CastRequest {
                srn: voter.srn().clone(),
                credential_hash: voter.credential_hash().to_string(),
                candidate: candidate.clone(),
                receipt_hash: hash,
            },
        )?;
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
