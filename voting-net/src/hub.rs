//! Live tallies: one broadcaster thread per server recomputes the tally when the
//! database changes and hands the encoded event to every subscribed connection.
//!
//! The broadcaster learns of changes two ways: this process's sessions *poke* it
//! after each commit (immediate), and, while anyone is subscribed, it polls the
//! database's cheap [`ChangeToken`] so that commits made through another server
//! instance are noticed too. Because ballot ids are assigned before commit, a
//! ballot can become visible after a later one; the broadcaster therefore
//! re-counts once more shortly after each change ("settle"), so a late commit is
//! never left out of the pushed tally.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use voting_core::{ChangeToken, ElectionState, Store};

use crate::protocol::Event;

/// The latest tally event, shared by all subscribers.
#[derive(Debug, Clone)]
pub(crate) struct Published {
    /// Increases with every new tally.
    pub seq: u64,
    /// The encoded `tally` event line (without newline).
    pub line: Arc<Vec<u8>>,
    /// The election state in that tally (for the results policy).
    pub state: ElectionState,
}

#[derive(Debug, Default)]
struct HubState {
    latest: Option<Published>,
    subscribers: usize,
    poked: bool,
    shutdown: bool,
}

/// The meeting point of the broadcaster and the sessions.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// Signalled when a new tally is published.
    published: Condvar,
    /// Signalled when the broadcaster has something to do.
    wake: Condvar,
}

/// Timing of the broadcaster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubTiming {
    /// How often the change token is polled while anyone is subscribed.
    pub poll: Duration,
    /// Shortest gap between two tally computations (bounds database load).
    pub min_gap: Duration,
    /// Extra recounts after a change, measured from the change.
    pub settle: [Duration; 2],
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A poisoned lock only means a thread panicked while holding it; the
        // state (a counter and an Arc) is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a subscriber; returns the sequence number it has "seen".
    pub(crate) fn subscribe(&self) -> u64 {
        let mut s = self.lock();
        s.subscribers += 1;
        s.poked = true;
        self.wake.notify_all();
        s.latest.as_ref().map_or(0, |p| p.seq)
    }

    pub(crate) fn unsubscribe(&self) {
        let mut s = self.lock();
        s.subscribers = s.subscribers.saturating_sub(1);
    }

    /// Tells the broadcaster that this process just committed a change.
    pub(crate) fn poke(&self) {
        let mut s = self.lock();
        if s.subscribers > 0 {
            s.poked = true;
            self.wake.notify_all();
        }
    }

    /// Waits up to `timeout` for a tally newer than `seen`.
    pub(crate) fn wait_newer(&self, seen: u64, timeout: Duration) -> Option<Published> {
        let s = self.lock();
        let (s, _) = self
            .published
            .wait_timeout_while(s, timeout, |s| {
                !s.shutdown && s.latest.as_ref().is_none_or(|p| p.seq <= seen)
            })
            .unwrap_or_else(|p| p.into_inner());
        s.latest.clone().filter(|p| p.seq > seen)
    }

    pub(crate) fn shutdown(&self) {
        let mut s = self.lock();
        s.shutdown = true;
        self.wake.notify_all();
        self.published.notify_all();
    }

    fn publish(&self, line: Vec<u8>, state: ElectionState) {
        let mut s = self.lock();
        let seq = s.latest.as_ref().map_or(0, |p| p.seq) + 1;
        s.latest = Some(Published {
            seq,
            line: Arc::new(line),
            state,
        });
        self.published.notify_all();
    }

    /// The broadcaster's loop; returns on shutdown.
    pub(crate) fn run(&self, store: &Store, timing: HubTiming) {
        let mut last_token: Option<ChangeToken> = None;
        let mut last_line: Option<Vec<u8>> = None;
        let mut last_count = Instant::now() - timing.min_gap;
        let mut settle: Vec<Instant> = Vec::new();
        loop {
            let poked = {
                let mut s = self.lock();
                while s.subscribers == 0 && !s.shutdown {
                    // Nobody listens: forget what we published, so a new
                    // subscriber's first event is fresh.
                    last_token = None;
                    last_line = None;
                    s = self.wake.wait(s).unwrap_or_else(|p| p.into_inner());
                }
                if s.shutdown {
                    return;
                }
                if !s.poked {
                    s = self
                        .wake
                        .wait_timeout(s, timing.poll)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                std::mem::take(&mut s.poked)
            };
            let since = last_count.elapsed();
            if since < timing.min_gap {
                std::thread::sleep(timing.min_gap - since);
            }
            let token = match store.change_token() {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("live tally: cannot read the change counter: {e}");
                    std::thread::sleep(timing.poll * 4);
                    continue;
                }
            };
            let now = Instant::now();
            let changed = poked || last_token != Some(token);
            let settling = settle.iter().any(|t| *t <= now);
            settle.retain(|t| *t > now);
            if !changed && !settling {
                continue;
            }
            if last_token != Some(token) {
                settle = timing.settle.iter().map(|d| now + *d).collect();
            }
            last_token = Some(token);
            last_count = Instant::now();
            let tally = match store.tally() {
                Ok(t) => t,
                Err(e) => {
                    log::warn!("live tally: cannot count: {e}");
                    last_token = None;
                    continue;
                }
            };
            let state = tally.state;
            let line = match serde_json::to_vec(&Event::Tally { tally }) {
                Ok(l) => l,
                Err(e) => {
                    log::error!("live tally: cannot encode: {e}");
                    continue;
                }
            };
            if last_line.as_ref() != Some(&line) {
                last_line = Some(line.clone());
                self.publish(line, state);
            }
        }
    }
}
