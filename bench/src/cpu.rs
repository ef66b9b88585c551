//! CPU accounting from `/proc`: this process, one of its threads, and the
//! local database server, so that a figure can say where its CPU went.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU time from a `/proc/.../stat` file (10 ms resolution).
fn stat_cpu(path: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name (field 2) may hold spaces: count fields after its ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_secs_f64((utime + stime) / TICKS_PER_SEC))
}

/// `struct timespec` on 64-bit Linux.
#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    // From the C library std already links; no crate needed for one call.
    fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
}

/// `CLOCK_PROCESS_CPUTIME_ID` and `CLOCK_THREAD_CPUTIME_ID` (linux/time.h).
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// A CPU-time clock with nanosecond resolution (`/proc` only has 10 ms ticks
/// per thread, too coarse for threads that run a few milliseconds).
fn cpu_clock(id: i32) -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call,
    // and these clock ids exist on every Linux since 2.6.12.
    let rc = unsafe { clock_gettime(id, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time of this whole process so far (all threads, live and ended).
pub fn process() -> Duration {
    cpu_clock(CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread so far.
pub fn thread() -> Duration {
    cpu_clock(CLOCK_THREAD_CPUTIME_ID)
}

/// The local MariaDB/MySQL server process, if there is one we may look at.
pub fn database_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| matches!(c.trim(), "mariadbd" | "mysqld"))
        })
}

/// CPU time of process `pid` so far.
pub fn of_pid(pid: u32) -> Option<Duration> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// CPU spent during a measured phase, split by who spent it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Split {
    /// The benchmark's client threads.
    pub client: Duration,
    /// The rest of this process: the in-process server.
    pub server: Duration,
    /// The database server process (`None` when it is not local or not readable).
    pub database: Option<Duration>,
}

impl Split {
    /// Nothing spent yet (to [`add`](Split::add) phases to).
    pub fn empty() -> Split {
        Split {
            database: Some(Duration::ZERO),
            ..Split::default()
        }
    }

    /// Adds another phase's figures.
    pub fn add(&mut self, other: Split) {
        self.client += other.client;
        self.server += other.server;
        self.database = match (self.database, other.database) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
    }
}

/// Starts measuring a phase: call [`Meter::finish`] with the CPU time the
/// client threads reported for themselves.
pub struct Meter {
    process: Duration,
    database: Option<(u32, Duration)>,
}

impl Meter {
    /// Takes the starting readings.
    pub fn start() -> Meter {
        Meter {
            process: process(),
            database: database_pid().and_then(|pid| Some((pid, of_pid(pid)?))),
        }
    }

    /// The split since [`Meter::start`], given the client threads' own CPU time.
    pub fn finish(self, client: Duration) -> Split {
        let total = process().saturating_sub(self.process);
        Split {
            client,
            server: total.saturating_sub(client),
            database: self
                .database
                .and_then(|(pid, before)| Some(of_pid(pid)?.saturating_sub(before))),
        }
    }
}

/// Microseconds per operation.
pub fn per_op(d: Duration, ops: usize) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6 / ops.max(1) as f64)
}

/// Busy time of all CPUs together, from the first line of `/proc/stat`.
fn machine_busy() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: busy = all but idle and iowait.
    let busy: f64 = fields
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(6)
        .map(|(_, v)| v)
        .sum();
    Some(Duration::from_secs_f64(busy / TICKS_PER_SEC))
}

/// Who used the machine's CPUs during a stretch of the run.
pub struct Contention {
    at: std::time::Instant,
    busy: Option<Duration>,
    own: Duration,
    database: Option<(u32, Duration)>,
}

impl Contention {
    /// Starts watching.
    pub fn start() -> Contention {
        Contention {
            at: std::time::Instant::now(),
            busy: machine_busy(),
            own: process(),
            database: database_pid().and_then(|pid| Some((pid, of_pid(pid)?))),
        }
    }

    /// One sentence: the shares of the machine's CPU time this process, the
    /// database server and everything else used since [`Contention::start`].
    pub fn note(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let capacity = self.at.elapsed().as_secs_f64() * cores;
        let share = |d: Duration| d.as_secs_f64() / capacity.max(1e-9) * 100.0;
        let own = process().saturating_sub(self.own);
        let db = self
            .database
            .and_then(|(pid, before)| Some(of_pid(pid)?.saturating_sub(before)));
        let busy = machine_busy()
            .zip(self.busy)
            .map(|(now, then)| now.saturating_sub(then));
        match (busy, db) {
            (Some(busy), Some(db)) => format!(
                "CPU during this item: this process {:.0} %, MariaDB {:.0} %, other processes {:.0} % of {cores} cores.",
                share(own),
                share(db),
                share(busy.saturating_sub(own + db))
            ),
            (Some(busy), None) => format!(
                "CPU during this item: this process {:.0} %, everything else (database included) {:.0} % of {cores} cores.",
                share(own),
                share(busy.saturating_sub(own))
            ),
            _ => format!("CPU during this item: this process {:.0} %.", share(own)),
        }
    }
}
