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
//!
//! Only the latest event is kept: a subscriber that falls behind skips to the
//! newest. A new count waits (at most `max_gap` after the previous one) until
//! every subscriber has taken the previous event: with hundreds of subscribers
//! the fan-out is what costs, and events published faster than it completes
//! only compete with it for the CPU, each arriving staler.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::{Thread, ThreadId};
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

/// What the broadcaster waits on.
#[derive(Debug, Default)]
struct Wake {
    subscribers: usize,
    poked: bool,
}

/// The meeting point of the broadcaster and the sessions.
///
/// Subscribed sessions never queue on a shared lock to learn of a new tally: the
/// latest event sits behind an `RwLock` (read-locked only to clone an `Arc`), its
/// sequence number in an atomic, and the broadcaster unparks each subscribed
/// session's thread after publishing. (One condvar with `notify_all` made 500
/// woken threads re-take one mutex in turn.)
#[derive(Debug, Default)]
pub(crate) struct Hub {
    wake: Mutex<Wake>,
    /// Signalled when the broadcaster has something to do.
    wake_cv: Condvar,
    latest: RwLock<Option<Published>>,
    /// The sequence number of `latest` (0: nothing published yet).
    seq: AtomicU64,
    /// How many subscribers have taken the latest event.
    taken: AtomicUsize,
    /// The threads of the subscribed sessions (one session per thread).
    threads: Mutex<HashMap<ThreadId, Thread>>,
    shutdown: AtomicBool,
}

/// Timing of the broadcaster.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubTiming {
    /// How often the change token is polled while anyone is subscribed.
    pub poll: Duration,
    /// Shortest gap between two tally computations (bounds database load).
    pub min_gap: Duration,
    /// Longest the broadcaster holds a new tally back while subscribers are
    /// still taking the previous one (see [`Hub::run`]).
    pub max_gap: Duration,
    /// Extra recounts after a change, measured from the change.
    pub settle: [Duration; 2],
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, Wake> {
        // A poisoned lock only means a thread panicked while holding it; the
        // state (a counter and a flag) is still consistent.
        self.wake.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn threads(&self) -> MutexGuard<'_, HashMap<ThreadId, Thread>> {
        self.threads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the calling session's thread as a subscriber; returns the
    /// sequence number it has "seen".
    pub(crate) fn subscribe(&self) -> u64 {
        let me = std::thread::current();
        self.threads().insert(me.id(), me);
        let mut s = self.lock();
        s.subscribers += 1;
        s.poked = true;
        self.wake_cv.notify_all();
        // It has "taken" the latest event: it will get the next one.
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.seq.load(Ordering::SeqCst)
    }

    /// Unregisters the calling session's thread.
    pub(crate) fn unsubscribe(&self) {
        self.threads().remove(&std::thread::current().id());
        let mut s = self.lock();
        s.subscribers = s.subscribers.saturating_sub(1);
    }

    /// Tells the broadcaster that this process just committed a change.
    pub(crate) fn poke(&self) {
        let mut s = self.lock();
        if s.subscribers > 0 && !s.poked {
            s.poked = true;
            self.wake_cv.notify_all();
        }
    }

    /// Waits up to `timeout` for a tally newer than `seen` (called by a
    /// subscribed session, on its own thread).
    pub(crate) fn wait_newer(&self, seen: u64, timeout: Duration) -> Option<Published> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.seq.load(Ordering::SeqCst) > seen {
                let latest = self
                    .latest
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
                    .filter(|p| p.seq > seen);
                if latest.is_some() {
                    self.taken.fetch_add(1, Ordering::SeqCst);
                }
                return latest;
            }
            let now = Instant::now();
            if now >= deadline || self.shutdown.load(Ordering::SeqCst) {
                return None;
            }
            // An unpark that came before this park makes it return at once.
            std::thread::park_timeout(deadline - now);
        }
    }

    pub(crate) fn shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _s = self.lock();
        self.wake_cv.notify_all();
        drop(_s);
        self.unpark_all();
    }

    fn unpark_all(&self) {
        for t in self.threads().values() {
            t.unpark();
        }
    }

    fn publish(&self, line: Vec<u8>, state: ElectionState) {
        {
            let mut latest = self.latest.write().unwrap_or_else(|p| p.into_inner());
            let seq = self.seq.load(Ordering::SeqCst) + 1;
            *latest = Some(Published {
                seq,
                line: Arc::new(line),
                state,
            });
            self.taken.store(0, Ordering::SeqCst);
            self.seq.store(seq, Ordering::SeqCst);
        }
        self.unpark_all();
    }

    /// Whether the subscribers are still taking the latest event.
    fn delivering(&self) -> bool {
        let subscribers = self.lock().subscribers;
        self.seq.load(Ordering::SeqCst) > 0 && self.taken.load(Ordering::SeqCst) < subscribers
    }

    /// The broadcaster's loop; returns on shutdown.
    pub(crate) fn run(&self, store: &Store, timing: HubTiming) {
        let mut last_token: Option<ChangeToken> = None;
        let mut last_line: Option<Vec<u8>> = None;
        let mut last_count = Instant::now() - timing.min_gap;
        // How long the last count took: a count walks every ballot (linear in
        // the box), so the gap grows with it and counting takes at most a fifth
        // of one database core however large the election.
        let mut last_cost = Duration::ZERO;
        let mut settle: Vec<Instant> = Vec::new();
        loop {
            {
                let mut s = self.lock();
                while s.subscribers == 0 && !self.shutdown.load(Ordering::SeqCst) {
                    // Nobody listens: forget what we published, so a new
                    // subscriber's first event is fresh.
                    last_token = None;
                    last_line = None;
                    s = self.wake_cv.wait(s).unwrap_or_else(|p| p.into_inner());
                }
                if self.shutdown.load(Ordering::SeqCst) {
                    return;
                }
                if !s.poked {
                    drop(
                        self.wake_cv
                            .wait_timeout(s, timing.poll)
                            .unwrap_or_else(|p| p.into_inner()),
                    );
                }
            }
            let gap = timing.min_gap.max(last_cost * 2);
            let since = last_count.elapsed();
            if since < gap {
                std::thread::sleep(gap - since);
            }
            // Counting again while the subscribers still take the last event
            // only queues events behind it: wait (a little) until they have it,
            // so that each event is as fresh as it can be when it goes out.
            let gate = Instant::now();
            while self.delivering() && last_count.elapsed() < timing.max_gap {
                std::thread::sleep(Duration::from_millis(1));
            }
            log::trace!(
                "hub: waited {:?} for delivery ({} of {} taken), {:?} since the last count",
                gate.elapsed(),
                self.taken.load(Ordering::SeqCst),
                self.lock().subscribers,
                last_count.elapsed()
            );
            let poked = std::mem::take(&mut self.lock().poked);
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
                Ok(t) => {
                    last_cost = last_count.elapsed();
                    t
                }
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
