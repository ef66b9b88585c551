//! Live results: a subscription on a connection of its own (so requests never
//! wait behind it), fed by the server's pushed `tally` events, and the tally
//! turned into the rows of the bar chart.

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::Duration;

use voting_core::{ErrorCode, Tally};
use voting_net::{Event, NetError};

use crate::session::{Login, Target};
use crate::TallyRow;

/// First and longest wait before subscribing again after the connection broke.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How soon a stopped watch notices.
const STOP_CHECK: Duration = Duration::from_millis(500);

/// A running subscription; dropping it stops it (within half a second).
pub struct TallyWatch {
    _stop: mpsc::Sender<()>,
}

impl TallyWatch {
    /// Subscribes on a new connection to `target` (signed in as `login`, if
    /// any) and calls `post` with the first tally, every pushed one, and any
    /// error. A broken connection is re-established with a growing pause; a
    /// `forbidden` answer (results not public yet) ends the watch.
    pub fn start(
        target: Target,
        login: Option<Login>,
        post: impl Fn(Result<Tally, NetError>) + Send + 'static,
    ) -> TallyWatch {
        let (stop, stopped) = mpsc::channel::<()>();
        let spawned = thread::Builder::new()
            .name("voting-tally".into())
            .spawn(move || {
                let gone = || matches!(stopped.try_recv(), Err(TryRecvError::Disconnected));
                let mut pause = RETRY_FIRST;
                loop {
                    let outcome: Result<(), NetError> = (|| {
                        let mut client = target.open(login.as_ref())?;
                        post(Ok(client.subscribe()?));
                        pause = RETRY_FIRST;
                        // Wake up now and then (without asking the server
                        // anything) to notice a stopped watch promptly.
                        while !gone() {
                            match client.next_event(Some(STOP_CHECK))? {
                                Some(Event::Tally { tally }) => post(Ok(tally)),
                                Some(Event::Closing { error }) => return Err(error.into()),
                                _ => {}
                            }
                        }
                        Ok(())
                    })();
                    let Err(e) = outcome else { return };
                    if gone() {
                        return;
                    }
                    let forbidden = e.code() == ErrorCode::Forbidden;
                    post(Err(e));
                    if forbidden {
                        return;
                    }
                    match stopped.recv_timeout(pause) {
                        Err(RecvTimeoutError::Timeout) => pause = (pause * 2).min(RETRY_MAX),
                        _ => return,
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the live tally thread: {e}");
        }
        TallyWatch { _stop: stop }
    }
}

/// One chart row per candidate: bar length is the share of the ballots.
pub fn rows(tally: &Tally) -> Vec<TallyRow> {
    tally
        .candidates
        .iter()
        .map(|c| {
            let share = fraction(c.votes, tally.ballots);
            TallyRow {
                srn: c.srn.as_str().into(),
                name: c.name.as_str().into(),
                votes: i32::try_from(c.votes).unwrap_or(i32::MAX),
                share: share as f32,
                label: format!("{} ({:.1} %)", c.votes, share * 100.0).into(),
            }
        })
        .collect()
}

/// "Turnout: 3 of 10 voters (30.0 %) · 3 ballots".
pub fn summary(tally: &Tally) -> String {
    format!(
        "Turnout: {} of {} voters ({:.1} %) · {} ballots · election {}",
        tally.voted,
        tally.voters,
        fraction(tally.voted, tally.voters) * 100.0,
        tally.ballots,
        tally.state
    )
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voting_core::{CandidateCount, ElectionState};

    fn tally(votes: &[u64], voters: u64) -> Tally {
        Tally {
            state: ElectionState::Open,
            candidates: votes
                .iter()
                .enumerate()
                .map(|(i, &votes)| CandidateCount {
                    srn: format!("C{}", i + 1).parse().expect("srn"),
                    name: format!("Candidate {}", i + 1),
                    affiliation: None,
                    votes,
                })
                .collect(),
            ballots: votes.iter().sum(),
            voters,
            voted: votes.iter().sum(),
        }
    }

    #[test]
    fn bars_are_shares_of_the_ballots_and_turnout_counts_voters() {
        let t = tally(&[3, 1], 8);
        let rows = rows(&t);
        assert_eq!(rows[0].label, "3 (75.0 %)");
        assert!((rows[1].share - 0.25).abs() < 1e-6);
        assert!(summary(&t).starts_with("Turnout: 4 of 8 voters (50.0 %)"));
    }

    #[test]
    fn an_empty_box_draws_empty_bars() {
        let t = tally(&[0, 0], 0);
        assert!(rows(&t)
            .iter()
            .all(|r| r.share == 0.0 && r.label == "0 (0.0 %)"));
        assert!(summary(&t).starts_with("Turnout: 0 of 0 voters (0.0 %)"));
    }
}
