//! Group commit for casts: concurrent [`Store::cast_vote`] calls of one process
//! share one transaction, so the database does one share lock, one roll update,
//! one ballot insert and one commit for many votes.
//!
//! **Who runs a batch.** A cast joins a queue. It leads a batch at once while
//! the batches already running hold fewer than [`OVERLAP_BELOW`] casts: a lone
//! cast never waits for company, and at low concurrency commits overlap as they
//! would without batching. Past that, casts wait for a running batch to commit,
//! and the first of them to wake leads the next batch with everything queued
//! (≤ [`MAX_BATCH`]): the busier the server, the bigger the batches, the less
//! database work per vote. A batch stops counting as running once it has
//! committed, so the next one overlaps its sealing round. Every caster returns
//! only after the transaction that holds its vote has committed (or failed) and
//! the ballot has been sealed (or sealing failed, see `Store::cast_vote`).
//!
//! **The rules stay per vote.** In the batch transaction: the election row is
//! share-locked (a close waits for the batch; nothing commits after a close), the
//! candidates are checked, the voters' rows are read *and locked* (`FOR UPDATE`,
//! in key order, so batches of several server instances cannot deadlock each
//! other; a locking read sees the latest commit, so a voter who just voted
//! elsewhere reads as voted), and only then does each cast get its outcome:
//! unknown candidate, not on the roll, already voted (also the second of two casts
//! of one voter in the same batch) — none of which changes anything — or a
//! ballot. One `UPDATE … WHERE srn IN (…) AND NOT voted` marks the winners, their
//! ballots are inserted, and their ids read back by receipt hash. A failure of
//! the database fails every cast of the batch (nothing of it committed); a lost
//! lock race re-runs the whole batch ([`Store::transaction`]).
//!
//! **Statement texts.** `IN` lists are padded to a power of two (repeating the
//! last value) and inserts are split into power-of-two chunks, so a batch uses
//! one of a few statement texts that stay in the connection's prepared-statement
//! cache (see `Store::connect`).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};

use mysql::prelude::Queryable;
use mysql::{Transaction, TxOpts, Value};

use super::election::locked_state;
use super::{Failure, Store};
use crate::error::{Result, VotingError};
use crate::integrity::{to_hex, BallotSeal};
use crate::types::{ElectionState, Srn};

/// Most casts in one transaction.
pub(crate) const MAX_BATCH: usize = 64;
/// A batch may start beside running ones while these hold fewer casts than this.
const OVERLAP_BELOW: usize = 4;

/// One vote to cast: who, for whom, and the hash of the receipt its ballot carries.
#[derive(Debug)]
pub(crate) struct CastRequest {
    pub srn: Srn,
    /// The credential hash the voter signed in against (see `VoterSession`).
    pub credential_hash: String,
    pub candidate: Srn,
    pub receipt_hash: [u8; 32],
}

#[derive(Debug, Default)]
struct State {
    next_ticket: u64,
    queue: VecDeque<(u64, CastRequest)>,
    /// Sizes of the batches running now.
    running: Vec<usize>,
    /// Outcomes (the ballot id, or why not) not yet collected by their caster.
    done: HashMap<u64, Result<Cast>>,
}

impl State {
    fn may_lead(&self) -> bool {
        !self.queue.is_empty() && self.running.iter().sum::<usize>() < OVERLAP_BELOW
    }
}

/// This process's cast queue (one per [`Store`]).
#[derive(Debug, Default)]
pub(crate) struct CastBatcher {
    state: Mutex<State>,
    /// Signalled when a batch ends (outcomes are ready, and a new leader may start).
    ended: Condvar,
}

/// A committed cast: its ballot id, and its seal unless sealing failed.
pub(crate) type Cast = (u64, Option<BallotSeal>);

impl CastBatcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the queue consistent: every
        // mutation is a single push, pop or insert.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Casts `request`, alone or with whatever else is queued; returns once
    /// its transaction has committed and its ballot has been sealed (or
    /// sealing failed: the vote counts all the same).
    pub(crate) fn cast(&self, store: &Store, request: CastRequest) -> Result<Cast> {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queue.push_back((ticket, request));
        loop {
            if let Some(outcome) = st.done.remove(&ticket) {
                return outcome;
            }
            if st.may_lead() {
                let take = st.queue.len().min(MAX_BATCH);
                let batch: Vec<(u64, CastRequest)> = st.queue.drain(..take).collect();
                st.running.push(batch.len());
                drop(st);
                self.lead(store, batch);
                st = self.lock();
                continue;
            }
            st = self.ended.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Runs a batch, lets the next one start as soon as this one has committed,
    /// seals, and hands every caster its outcome.
    fn lead(&self, store: &Store, batch: Vec<(u64, CastRequest)>) {
        let mut guard = BatchGuard {
            batcher: self,
            size: batch.len(),
            running: true,
            tickets: batch.iter().map(|(t, _)| *t).collect(),
            outcomes: None,
        };
        let requests: Vec<CastRequest> = batch.into_iter().map(|(_, r)| r).collect();
        let started = std::time::Instant::now();
        let committed = run_batch(store, &requests);
        log::trace!(
            "cast batch of {} committed in {:?}",
            requests.len(),
            started.elapsed()
        );
        // The next batch's transaction may overlap this one's sealing round.
        guard.stop_running();
        let started = std::time::Instant::now();
        guard.outcomes = Some(seal_batch(store, committed));
        log::trace!(
            "cast batch of {} sealed in {:?}",
            requests.len(),
            started.elapsed()
        );
        // Dropping the guard hands out the outcomes and wakes the queue.
    }
}

/// Hands a batch's outcomes to its casters when the leader is done with it,
/// and, should the leader panic, an internal error instead of leaving them
/// waiting forever.
struct BatchGuard<'a> {
    batcher: &'a CastBatcher,
    size: usize,
    running: bool,
    tickets: Vec<u64>,
    outcomes: Option<Vec<Result<Cast>>>,
}

impl BatchGuard<'_> {
    fn stop_running(&mut self) {
        if std::mem::take(&mut self.running) {
            let mut st = self.batcher.lock();
            if let Some(i) = st.running.iter().position(|&m| m == self.size) {
                st.running.swap_remove(i);
            }
            drop(st);
            self.batcher.ended.notify_all();
        }
    }
}

impl Drop for BatchGuard<'_> {
    fn drop(&mut self) {
        self.stop_running();
        let n = self.tickets.len();
        let outcomes = self.outcomes.take().unwrap_or_else(|| {
            (0..n)
                .map(|_| Err(VotingError::Internal("the cast batch was abandoned".into())))
                .collect()
        });
        let mut st = self.batcher.lock();
        for (ticket, outcome) in self.tickets.drain(..).zip(outcomes) {
            st.done.insert(ticket, outcome);
        }
        drop(st);
        self.batcher.ended.notify_all();
    }
}

/// Seals a committed batch: one sealing round for all of it (shared with any
/// other caster of this process, `Store::seal_and_pick_up`), which hands back
/// the seals; a seal not handed out here is read from the table.
fn seal_batch(store: &Store, committed: Vec<Result<u64>>) -> Vec<Result<Cast>> {
    let ids: Vec<u64> = committed
        .iter()
        .filter_map(|o| o.as_ref().ok().copied())
        .collect();
    if ids.is_empty() {
        return committed
            .into_iter()
            .map(|o| o.map(|id| (id, None)))
            .collect();
    }
    let seals: Result<HashMap<u64, BallotSeal>> = store.seal_and_pick_up(&ids).and_then(|picked| {
        let mut seals = HashMap::with_capacity(ids.len());
        let mut missing = Vec::new();
        for (&id, seal) in ids.iter().zip(picked) {
            match seal {
                Some(seal) => {
                    seals.insert(id, seal);
                }
                None => missing.push(id),
            }
        }
        if !missing.is_empty() {
            let rows: Vec<(u64, Option<u64>, Option<Vec<u8>>)> = store.conn()?.exec(
                in_list(
                    "SELECT id, seq, chain_hash FROM ballots WHERE id IN",
                    missing.len(),
                    "",
                ),
                padded(missing.iter().map(|&id| Value::from(id))),
            )?;
            for (id, seq, hash) in rows {
                let hash: Option<[u8; 32]> = hash.and_then(|h| h.try_into().ok());
                if let (Some(seq), Some(hash)) = (seq, hash) {
                    seals.insert(
                        id,
                        BallotSeal {
                            seq,
                            chain_hash: to_hex(&hash),
                        },
                    );
                }
            }
        }
        Ok(seals)
    });
    let mut seals = seals
        .inspect_err(|e| log::warn!("{} ballots committed but not sealed yet: {e}", ids.len()))
        .unwrap_or_default();
    committed
        .into_iter()
        .map(|o| {
            o.map(|id| {
                let seal = seals.remove(&id);
                if seal.is_none() {
                    log::warn!("ballot {id} committed but not sealed yet");
                }
                (id, seal)
            })
        })
        .collect()
}

/// Runs one batch; the outcomes are in the order of `batch`.
fn run_batch(store: &Store, batch: &[CastRequest]) -> Vec<Result<u64>> {
    if let [one] = batch {
        return vec![store.transaction(TxOpts::default(), |tx| cast_one(tx, one))];
    }
    match store.transaction(TxOpts::default(), |tx| cast_many(tx, batch)) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            log::debug!("a batch of {} casts failed: {e}", batch.len());
            batch.iter().map(|_| Err(replicate(&e))).collect()
        }
    }
}

/// The transaction of a single cast.
fn cast_one(tx: &mut Transaction<'_>, cast: &CastRequest) -> Result<u64, Failure> {
    let srn = &cast.srn;
    // A shared lock: votes don't wait for each other, but a close waits for
    // every vote in flight, and no vote commits after it.
    let state = locked_state(tx, "LOCK IN SHARE MODE")?;
    if state != ElectionState::Open {
        return Err(VotingError::ElectionNotOpen(state).into());
    }
    let standing: Option<u8> = tx.exec_first(
        "SELECT 1 FROM candidates WHERE srn = ?",
        (cast.candidate.as_str(),),
    )?;
    if standing.is_none() {
        return Err(VotingError::UnknownCandidate(cast.candidate.to_string()).into());
    }
    // The row lock taken here is what makes one voter, one vote: a second
    // attempt waits for this one and then finds `voted` already set.
    tx.exec_drop(
        "UPDATE voters SET voted = TRUE WHERE srn = ? AND NOT voted AND credential_hash = ?",
        (srn.as_str(), cast.credential_hash.as_str()),
    )?;
    if tx.affected_rows() != 1 {
        // A locking read: under REPEATABLE READ a plain SELECT would see this
        // transaction's snapshot, taken before a racing vote committed, and
        // report the voter as missing from the roll.
        let row: Option<(bool, String)> = tx.exec_first(
            "SELECT voted, credential_hash FROM voters WHERE srn = ? LOCK IN SHARE MODE",
            (srn.as_str(),),
        )?;
        return Err(refusal(cast, row.as_ref().map(|(v, h)| (*v, h.as_str()))).into());
    }
    tx.exec_drop(
        "INSERT INTO ballots (candidate_srn, receipt_hash) VALUES (?, ?)",
        (cast.candidate.as_str(), &cast.receipt_hash[..]),
    )?;
    tx.last_insert_id()
        .ok_or_else(|| Failure::Rule(VotingError::Internal("no ballot id".into())))
}

/// Why a cast found its voter's row (`voted`, credential hash) unfit, or missing.
fn refusal(cast: &CastRequest, row: Option<(bool, &str)>) -> VotingError {
    match row {
        None => VotingError::NotEligible(cast.srn.clone()),
        Some((true, _)) => VotingError::AlreadyVoted(cast.srn.clone()),
        // The credential was reset after this session signed in.
        Some((false, _)) => VotingError::CredentialReset(cast.srn.clone()),
    }
}

/// The transaction of several casts; per-cast rule failures are outcomes, not
/// failures of the transaction.
fn cast_many(tx: &mut Transaction<'_>, batch: &[CastRequest]) -> Result<Vec<Result<u64>>, Failure> {
    let state = locked_state(tx, "LOCK IN SHARE MODE")?;
    if state != ElectionState::Open {
        return Err(VotingError::ElectionNotOpen(state).into());
    }
    let mut outcomes: Vec<Option<Result<u64>>> = batch.iter().map(|_| None).collect();

    let wanted: BTreeSet<&str> = batch.iter().map(|c| c.candidate.as_str()).collect();
    let standing: HashSet<String> = tx
        .exec::<String, _, _>(
            in_list("SELECT srn FROM candidates WHERE srn IN", wanted.len(), ""),
            padded(wanted.iter().map(|s| Value::from(*s))),
        )?
        .into_iter()
        .collect();
    for (cast, outcome) in batch.iter().zip(outcomes.iter_mut()) {
        if !standing.contains(cast.candidate.as_str()) {
            *outcome = Some(Err(VotingError::UnknownCandidate(
                cast.candidate.to_string(),
            )));
        }
    }

    let voters: BTreeSet<&str> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.is_none())
        .map(|(c, _)| c.srn.as_str())
        .collect();
    if voters.is_empty() {
        return Ok(finish(outcomes));
    }
    // Locks the voters' rows (in key order) and reads their latest committed state.
    let roll: HashMap<String, (bool, String)> = tx
        .exec::<(String, bool, String), _, _>(
            in_list(
                "SELECT srn, voted, credential_hash FROM voters WHERE srn IN",
                voters.len(),
                " FOR UPDATE",
            ),
            padded(voters.iter().map(|s| Value::from(*s))),
        )?
        .into_iter()
        .map(|(srn, voted, hash)| (srn, (voted, hash)))
        .collect();
    let mut taken: HashSet<&str> = HashSet::new();
    let mut winners: Vec<usize> = Vec::new();
    for (i, cast) in batch.iter().enumerate() {
        if outcomes[i].is_some() {
            continue;
        }
        let srn = cast.srn.as_str();
        let row = roll.get(srn).map(|(voted, hash)| (*voted, hash.as_str()));
        outcomes[i] = match row {
            None | Some((true, _)) => Some(Err(refusal(cast, row))),
            Some((false, hash)) if hash != cast.credential_hash => Some(Err(refusal(cast, row))),
            Some((false, _)) if !taken.insert(srn) => {
                Some(Err(VotingError::AlreadyVoted(cast.srn.clone())))
            }
            Some((false, _)) => {
                winners.push(i);
                None
            }
        };
    }
    if winners.is_empty() {
        return Ok(finish(outcomes));
    }

    tx.exec_drop(
        in_list(
            "UPDATE voters SET voted = TRUE WHERE srn IN",
            winners.len(),
            " AND NOT voted",
        ),
        padded(winners.iter().map(|&i| Value::from(batch[i].srn.as_str()))),
    )?;
    if tx.affected_rows() != winners.len() as u64 {
        // Cannot happen: the rows are locked and were read as not voted.
        return Err(VotingError::Internal(format!(
            "marked {} of {} locked voters as voted",
            tx.affected_rows(),
            winners.len()
        ))
        .into());
    }

    let mut rest = &winners[..];
    while !rest.is_empty() {
        let chunk = 1usize << (usize::BITS - 1 - rest.len().leading_zeros());
        let (now, later) = rest.split_at(chunk);
        let mut sql = String::from("INSERT INTO ballots (candidate_srn, receipt_hash) VALUES ");
        sql.push_str(&vec!["(?, ?)"; chunk].join(", "));
        let params: Vec<Value> = now
            .iter()
            .flat_map(|&i| {
                [
                    Value::from(batch[i].candidate.as_str()),
                    Value::from(&batch[i].receipt_hash[..]),
                ]
            })
            .collect();
        tx.exec_drop(sql, params)?;
        rest = later;
    }

    // Multi-row inserts get consecutive ids only under some auto-increment lock
    // modes: read them back by receipt hash (unique).
    let ids: HashMap<Vec<u8>, u64> = tx
        .exec::<(u64, Vec<u8>), _, _>(
            in_list(
                "SELECT id, receipt_hash FROM ballots WHERE receipt_hash IN",
                winners.len(),
                "",
            ),
            padded(
                winners
                    .iter()
                    .map(|&i| Value::from(&batch[i].receipt_hash[..])),
            ),
        )?
        .into_iter()
        .map(|(id, hash)| (hash, id))
        .collect();
    for &i in &winners {
        let id = ids
            .get(&batch[i].receipt_hash[..])
            .copied()
            .ok_or_else(|| {
                Failure::Rule(VotingError::Internal(
                    "an inserted ballot was not found".into(),
                ))
            })?;
        outcomes[i] = Some(Ok(id));
    }
    Ok(finish(outcomes))
}

fn finish(outcomes: Vec<Option<Result<u64>>>) -> Vec<Result<u64>> {
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err(VotingError::Internal("cast without outcome".into()))))
        .collect()
}

/// `head (?, ?, …) tail` with `n` placeholders rounded up to a power of two.
fn in_list(head: &str, n: usize, tail: &str) -> String {
    let n = n.max(1).next_power_of_two();
    let mut sql = String::with_capacity(head.len() + tail.len() + 3 * n + 4);
    sql.push_str(head);
    sql.push_str(" (");
    sql.push_str(&vec!["?"; n].join(", "));
    sql.push(')');
    sql.push_str(tail);
    sql
}

/// The values, padded to a power of two by repeating the last one (harmless in `IN`).
fn padded(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut v: Vec<Value> = values.collect();
    let n = v.len().max(1).next_power_of_two();
    if let Some(last) = v.last().cloned() {
        v.resize(n, last);
    }
    v
}

/// The same error again, for every cast of a batch that failed as a whole.
fn replicate(e: &VotingError) -> VotingError {
    use VotingError as E;
    match e {
        E::InvalidInput(s) => E::InvalidInput(s.clone()),
        E::Forbidden(s) => E::Forbidden(s.clone()),
        E::BadCredentials => E::BadCredentials,
        E::CredentialReset(s) => E::CredentialReset(s.clone()),
        E::LockedOut { retry_after_secs } => E::LockedOut {
            retry_after_secs: *retry_after_secs,
        },
        E::NotEligible(s) => E::NotEligible(s.clone()),
        E::AlreadyVoted(s) => E::AlreadyVoted(s.clone()),
        E::UnknownCandidate(s) => E::UnknownCandidate(s.clone()),
        E::ElectionNotOpen(s) => E::ElectionNotOpen(*s),
        E::WrongState(s) => E::WrongState(s.clone()),
        E::Duplicate(s) => E::Duplicate(s.clone()),
        E::NotFound(s) => E::NotFound(s.clone()),
        E::DatabaseUnavailable(s) => E::DatabaseUnavailable(s.clone()),
        E::OutcomeUnknown(s) => E::OutcomeUnknown(s.clone()),
        E::Internal(s) => E::Internal(s.clone()),
        E::IntegrityViolation(s) => E::IntegrityViolation(s.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_lists_are_padded_to_powers_of_two() {
        assert_eq!(
            in_list("SELECT 1 WHERE a IN", 1, ""),
            "SELECT 1 WHERE a IN (?)"
        );
        assert_eq!(
            in_list("X IN", 3, " FOR UPDATE"),
            "X IN (?, ?, ?, ?) FOR UPDATE"
        );
        let v = padded([1u64, 2, 3].into_iter().map(Value::from));
        assert_eq!(v.len(), 4);
        assert_eq!(v[3], Value::from(3u64));
        assert_eq!(padded([0u64; 64].into_iter().map(Value::from)).len(), 64);
    }

    #[test]
    fn a_batch_starts_only_beside_few_running_casts() {
        let mut st = State::default();
        assert!(!st.may_lead(), "nothing queued");
        st.queue.push_back((
            0,
            CastRequest {
                srn: Srn::parse("S1").expect("valid"),
                credential_hash: String::new(),
                candidate: Srn::parse("C1").expect("valid"),
                receipt_hash: [0; 32],
            },
        ));
        assert!(st.may_lead());
        st.running.push(1);
        assert!(st.may_lead());
        st.running.push(2);
        assert!(st.may_lead(), "three running");
        st.running.push(1);
        assert!(!st.may_lead(), "four running");
        st.running = vec![10];
        assert!(!st.may_lead(), "a big batch is running");
    }
}
