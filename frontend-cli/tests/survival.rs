//! The bad moments of a real deployment, with the real `voting serve` process:
//! killed mid-vote, its database gone for 10 s, 500 voters signing in at once.
//! Real MariaDB, real TLS on loopback; every test bounds its own time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use voting_core::{Candidate, ErrorCode, NewVoter, Secret, Srn, Store, StoreConfig};
use voting_net::{Client, ClientConfig, NetError};
use voting_testkit::{trusted_admin, TestCerts, TestDb};

const VOTING: &str = env!("CARGO_BIN_EXE_voting");

/// A `voting serve` child process.
struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    /// Starts `voting serve` on `127.0.0.1:port` (0: any free port) and waits
    /// until it says it is serving.
    fn start(database_url: &str, certs: &TestCerts, port: u16) -> Serve {
        let mut child = Command::new(VOTING)
            .arg("serve")
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("--cert")
            .arg(certs.cert())
            .arg("--key")
            .arg(certs.key())
            .env("VOTING_DATABASE_URL", database_url)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start voting serve");
        let mut log = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let mut bound = None;
        while bound.is_none() && log.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.split("serving on 127.0.0.1:").nth(1) {
                bound = rest.split(' ').next().and_then(|p| p.parse().ok());
            }
            line.clear();
        }
        // Keep draining the log, or the server would block on a full pipe; its
        // errors are shown with the test's output (nextest shows it on failure).
        std::thread::spawn(move || {
            for line in log.lines().map_while(Result::ok) {
                if line.contains("ERROR") {
                    eprintln!("voting serve: {line}");
                }
            }
        });
        let port = bound.unwrap_or_else(|| panic!("voting serve did not start on port {port}"));
        Serve { child, port }
    }

    fn addr(&self) -> String {
        format!("localhost:{}", self.port)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown code runs.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Schema, candidates `C1..=Cn`, voters `S1..=Sm` (returned with their
/// credentials), election open: set up through the library, as `voting db init`
/// and an admin would.
fn election(url: &str, candidates: usize, voters: usize) -> (Store, Vec<(String, Secret)>) {
    let store = Store::connect(url, StoreConfig::default()).expect("store");
    store.init_schema().expect("schema");
    let admin = trusted_admin();
    for i in 1..=candidates {
        let c = Candidate::parse(&format!("C{i}"), &format!("Candidate {i}"), None).unwrap();
        store.add_candidate(&admin, &c).expect("candidate");
    }
    let roll: Vec<NewVoter> = (1..=voters)
        .map(|i| NewVoter::parse(&format!("S{i}"), "Test", &format!("Voter {i}"), None).unwrap())
        .collect();
    let creds = store
        .import_voters(&admin, &roll, &mut |_, _| {})
        .expect("import")
        .into_iter()
        .map(|v| (v.srn.to_string(), v.credential))
        .collect();
    store.open_election(&admin).expect("open");
    (store, creds)
}

/// What the voting clients saw.
#[derive(Default)]
struct Ledger {
    /// Acknowledged votes: (receipt, candidate, the seal written down with it).
    acked: Vec<(String, Srn, Option<String>)>,
    /// Casts that got no answer (or an "outcome unknown") and whose retry found
    /// the vote already counted: committed, never acknowledged.
    counted_unacked: usize,
    /// Casts that got no answer and whose retry cast the vote.
    cast_on_retry: usize,
    /// Every error that was retried, by code.
    errors: BTreeMap<&'static str, usize>,
    /// `outcome_unknown` answers (the database broke during the commit).
    outcome_unknown: usize,
    /// Anything a voter should never see.
    unexpected: Vec<String>,
}

impl Ledger {
    fn merge(&mut self, other: Ledger) {
        self.acked.extend(other.acked);
        self.counted_unacked += other.counted_unacked;
        self.cast_on_retry += other.cast_on_retry;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        self.outcome_unknown += other.outcome_unknown;
        self.unexpected.extend(other.unexpected);
    }

    fn retried(&mut self, e: &NetError) {
        *self.errors.entry(e.code().as_str()).or_default() += 1;
    }
}

/// Backoff between retries: long enough not to spin while the server or the
/// database is down.
const RETRY: Duration = Duration::from_millis(100);

/// A polling-station kiosk: one connection signs in voter after voter and casts
/// each one's vote, retrying (reconnecting when needed) until every vote is
/// either acknowledged or found counted, or `deadline` passes.
fn kiosk(
    addr: &str,
    config: &ClientConfig,
    voters: &[&(String, Secret)],
    acked: &AtomicUsize,
    deadline: Instant,
) -> Ledger {
    let mut ledger = Ledger::default();
    let mut conn: Option<Client> = None;
    for (srn, credential) in voters {
        let n: usize = srn[1..].parse().unwrap();
        let candidate: Srn = format!("C{}", 1 + n % 3).parse().unwrap();
        // Set when an attempt may have been counted without our knowing.
        let mut uncertain = false;
        loop {
            if Instant::now() > deadline {
                ledger
                    .unexpected
                    .push(format!("{srn}: not done by the deadline"));
                return ledger;
            }
            let c = match &mut conn {
                Some(c) => c,
                None => match Client::connect(addr, config) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        ledger.retried(&e);
                        std::thread::sleep(RETRY);
                        continue;
                    }
                },
            };
            if let Err(e) = c.login_voter(srn, credential) {
                ledger.retried(&e);
                if !e.connection_survives() {
                    conn = None;
                }
                if !matches!(
                    e.code(),
                    ErrorCode::ConnectionFailed
                        | ErrorCode::DatabaseUnavailable
                        | ErrorCode::OutcomeUnknown
                ) {
                    ledger.unexpected.push(format!("{srn}: login: {e}"));
                    break;
                }
                std::thread::sleep(RETRY);
                continue;
            }
            match c.cast(&candidate) {
                Ok(receipt) => {
                    let seal = receipt.seal.as_ref().map(|s| s.short());
                    let code = receipt.receipt.expose().to_string();
                    ledger.acked.push((code, candidate, seal));
                    acked.fetch_add(1, Ordering::SeqCst);
                    ledger.cast_on_retry += usize::from(uncertain);
                    break;
                }
                Err(e) if e.code() == ErrorCode::AlreadyVoted && uncertain => {
                    ledger.counted_unacked += 1;
                    break;
                }
                Err(e) => {
                    ledger.retried(&e);
                    match e.code() {
                        // No answer: the vote may have been counted.
                        ErrorCode::ConnectionFailed => uncertain = true,
                        ErrorCode::OutcomeUnknown => {
                            ledger.outcome_unknown += 1;
                            uncertain = true;
                        }
                        // "Nothing was changed": taken at its word (an
                        // already_voted later, without another cause, is a lie).
                        ErrorCode::DatabaseUnavailable => {}
                        _ => {
                            ledger.unexpected.push(format!("{srn}: cast: {e}"));
                            break;
                        }
                    }
                    if !e.connection_survives() {
                        conn = None;
                    }
                    std::thread::sleep(RETRY);
                }
            }
        }
    }
    ledger
}

/// Runs `kiosks` kiosks over `creds` (voter i at kiosk i mod kiosks) while
/// `during` runs on this thread; returns what they saw.
fn vote_everyone(
    addr: &str,
    certs: &TestCerts,
    creds: &[(String, Secret)],
    kiosks: usize,
    limit: Duration,
    during: impl FnOnce(&AtomicUsize),
) -> Ledger {
    let config = ClientConfig::from_ca_file(certs.ca()).unwrap();
    let acked = AtomicUsize::new(0);
    let deadline = Instant::now() + limit;
    let mut ledger = Ledger::default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..kiosks)
            .map(|k| {
                let mine: Vec<_> = creds.iter().skip(k).step_by(kiosks).collect();
                let (config, acked) = (&config, &acked);
                scope.spawn(move || kiosk(addr, config, &mine, acked, deadline))
            })
            .collect();
        during(&acked);
        for h in handles {
            ledger.merge(h.join().unwrap());
        }
    });
    ledger
}

/// Waits until `acked` reaches `n` (panics after `limit`).
fn wait_for(acked: &AtomicUsize, n: usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while acked.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} votes in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every acknowledged receipt verifies, for its candidate, with the ballot chain
/// intact and its seal unchanged; and the box, the roll
/// and the count agree: as many ballots as voters marked voted as votes counted,
/// one per voter.
fn assert_consistent(store: &Store, addr: &str, certs: &TestCerts, ledger: &Ledger, voters: u64) {
    assert!(ledger.unexpected.is_empty(), "{:#?}", ledger.unexpected);
    let config = ClientConfig::from_ca_file(certs.ca()).unwrap();
    let mut c = Client::connect(addr, &config).expect("connect after the trouble");
    for (receipt, candidate, written_seal) in &ledger.acked {
        let check = c.verify(receipt).expect("an acknowledged receipt verifies");
        assert_eq!(&check.candidate, candidate);
        // The ballot chain came through intact, and the seal the voter wrote
        // down still matches.
        let chain = check.chain.expect("verify checks the chain");
        assert!(chain.intact, "{:?}", chain.problem);
        if let (Some(written), Some(seal)) = (written_seal, &check.seal) {
            assert!(
                seal.matches(written),
                "seal {written} became {}",
                seal.short()
            );
        }
    }
    let tally = store.tally().unwrap();
    let counted: u64 = tally.candidates.iter().map(|c| c.votes).sum();
    assert_eq!(
        (tally.ballots, tally.voted, counted),
        (voters, voters, voters),
        "ballots, voters marked voted, votes counted"
    );
    assert_eq!(
        ledger.acked.len() + ledger.counted_unacked,
        voters as usize,
        "every voter's vote is acknowledged or found counted"
    );
}

#[test]
fn a_server_killed_mid_vote_loses_no_acknowledged_vote() {
    const VOTERS: usize = 480;
    let db = TestDb::new();
    let certs = TestCerts::new();
    let (store, creds) = election(&db.url(), 3, VOTERS);
    let mut server = Some(Serve::start(&db.url(), &certs, 0));
    let port = server.as_ref().unwrap().port;
    let addr = format!("localhost:{port}");
    let started = Instant::now();
    let (mut at_kill, mut restarted_in) = (0, Duration::ZERO);
    let ledger = vote_everyone(
        &addr,
        &certs,
        &creds,
        16,
        Duration::from_secs(75),
        |acked| {
            wait_for(acked, 120, Duration::from_secs(40));
            let killed = Instant::now();
            server.as_mut().unwrap().kill();
            at_kill = acked.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            server = Some(Serve::start(&db.url(), &certs, port));
            restarted_in = killed.elapsed();
        },
    );
    let after_restart = ledger.acked.len() - at_kill;
    println!(
        "crash: {} votes acknowledged before SIGKILL, {} casts in flight without an answer \
         ({} found counted on retry, {} cast on retry), {after_restart} acknowledged after the \
         restart ({restarted_in:.1?} later); retried errors {:?}; {:.1?} in all",
        at_kill,
        ledger.counted_unacked + ledger.cast_on_retry,
        ledger.counted_unacked,
        ledger.cast_on_retry,
        ledger.errors,
        started.elapsed()
    );
    assert!(after_restart > 0, "the kill came after the last vote");
    assert!(
        ledger.errors.get("connection_failed").copied().unwrap_or(0) > 0,
        "no client noticed the kill"
    );
    assert_consistent(&store, &addr, &certs, &ledger, VOTERS as u64);
}

/// Set to 1 to skip the database-outage test on a machine without MariaDB's
/// server binaries (CI installs them, so there it always runs).
const SKIP_OUTAGE: &str = "VOTING_TEST_SKIP_PRIVATE_MARIADB";

/// A MariaDB server of the test's own, on its own port and data directory, that
/// the test may kill and restart; the shared test server is never touched.
struct PrivateMariaDb {
    dir: tempfile::TempDir,
    server: PathBuf,
    port: u16,
    child: Option<Child>,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from));
    let dirs: Vec<PathBuf> = dirs.collect();
    names
        .iter()
        .flat_map(|name| dirs.iter().map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

impl PrivateMariaDb {
    /// Installs a fresh data directory and starts the server; `None` only when
    /// the binaries are missing and [`SKIP_OUTAGE`] says to skip.
    fn start() -> Option<PrivateMariaDb> {
        let server = find_program(&["mariadbd", "mysqld"]);
        let install = find_program(&["mariadb-install-db", "mysql_install_db"]);
        let (Some(server), Some(install)) = (server, install) else {
            if std::env::var(SKIP_OUTAGE).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED: mariadbd or mariadb-install-db not found and {SKIP_OUTAGE}=1");
                return None;
            }
            panic!(
                "this test starts a private MariaDB and needs mariadbd and mariadb-install-db \
                 (apt-get install mariadb-server; scripts/test.sh does it), or {SKIP_OUTAGE}=1 \
                 to skip it"
            );
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .args(["--user=root", "--auth-root-authentication-method=normal"])
            .arg("--skip-test-db")
            .output()
            .expect("run mariadb-install-db");
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut db = PrivateMariaDb {
            dir,
            server,
            port,
            child: None,
        };
        db.restart();
        Some(db)
    }

    fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/", self.port)
    }

    /// (Re)starts the server on the same data directory and port, and waits
    /// until it answers.
    fn restart(&mut self) {
        let d = self.dir.path();
        let child = Command::new(&self.server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", d.join("mysqld.log").display()))
            .args(["--user=root", "--bind-address=127.0.0.1"])
            .args(["--innodb-buffer-pool-size=32M", "--max-connections=200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while mysql::Conn::new(self.root_url().as_str()).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(d.join("mysqld.log")).unwrap_or_default();
                panic!("the private MariaDB did not answer in 30 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: as abrupt as a crash or a pulled cable.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn the_server_rides_out_a_ten_second_database_outage() {
    const VOTERS: usize = 300;
    const OUTAGE: Duration = Duration::from_secs(10);
    let Some(mut mariadb) = PrivateMariaDb::start() else {
        return;
    };
    let mut root = mysql::Conn::new(mariadb.root_url().as_str()).unwrap();
    root.query_drop("CREATE DATABASE voting_outage").unwrap();
    drop(root);
    let url = format!("{}voting_outage", mariadb.root_url());
    let certs = TestCerts::new();
    let (store, creds) = election(&url, 3, VOTERS);
    let mut server = Serve::start(&url, &certs, 0);
    let addr = server.addr();
    let (mut before, mut during) = (0, 0);
    let (mut answering_in, mut recovered_in) = (Duration::ZERO, Duration::ZERO);
    let mut server_up = true;
    let ledger = vote_everyone(&addr, &certs, &creds, 8, Duration::from_secs(80), |acked| {
        wait_for(acked, 40, Duration::from_secs(30));
        mariadb.kill();
        let down = Instant::now();
        // Votes in flight at the kill have a second to end either way.
        std::thread::sleep(Duration::from_secs(1));
        before = acked.load(Ordering::SeqCst);
        while down.elapsed() < OUTAGE {
            server_up &= server.alive();
            std::thread::sleep(Duration::from_millis(100));
        }
        during = acked.load(Ordering::SeqCst) - before;
        let restarting = Instant::now();
        mariadb.restart();
        answering_in = restarting.elapsed();
        wait_for(acked, before + during + 1, Duration::from_secs(30));
        recovered_in = restarting.elapsed();
        server_up &= server.alive();
    });
    println!(
        "database outage ({OUTAGE:?}, mariadbd SIGKILLed): {before} votes acknowledged before, \
         {during} during, {} after; mariadbd answered {answering_in:.1?} after its restart, \
         the first vote was acknowledged {recovered_in:.1?} after it; \
         errors seen (each retried) {:?}, {} of them 'outcome unknown'; {} casts counted \
         without an answer",
        ledger.acked.len() - before - during,
        ledger.errors,
        ledger.outcome_unknown,
        ledger.counted_unacked
    );
    assert!(server_up && server.alive(), "voting serve exited");
    assert_eq!(during, 0, "votes acknowledged while the database was down");
    assert!(
        ledger
            .errors
            .get("database_unavailable")
            .copied()
            .unwrap_or(0)
            > 0,
        "no client was told the database is unavailable"
    );
    assert_eq!(
        ledger.errors.get("connection_failed"),
        None,
        "the outage broke client connections"
    );
    assert!(recovered_in < Duration::from_secs(15), "{recovered_in:?}");
    assert_consistent(&store, &addr, &certs, &ledger, VOTERS as u64);
}

/// Peak resident memory (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The memory bound of `connections` signed-in connections, from the design:
/// a base for the process (binary, OpenSSL, database pool, allocator), per
/// connection its thread's stack (256 KiB, all of it counted though little is
/// touched) plus TLS state and the request line buffer (≤ 64 KiB + one 8 KiB
/// read), and per concurrent scrypt verification (bounded by the cores) 1 MiB.
fn design_bound_kib(connections: u64, cores: u64) -> u64 {
    const BASE: u64 = 64 * 1024;
    const PER_CONNECTION: u64 = 256 + 128;
    const PER_SCRYPT: u64 = 1024;
    BASE + connections * PER_CONNECTION + cores * PER_SCRYPT
}

#[test]
fn five_hundred_voters_signing_in_at_once_all_get_in_within_the_memory_bound() {
    const VOTERS: usize = 500;
    let db = TestDb::new();
    let certs = TestCerts::new();
    let (_store, creds) = election(&db.url(), 3, VOTERS);
    let server = Serve::start(&db.url(), &certs, 0);
    let pid = server.child.id();
    let idle = peak_rss_kib(pid);
    let ca = std::fs::read(certs.ca()).unwrap();
    // One connector for all: the point is the server's load, not the client's.
    let connector = native_tls::TlsConnector::builder()
        .disable_built_in_roots(true)
        .add_root_certificate(native_tls::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    let (connected, replied) = (Barrier::new(VOTERS + 1), Barrier::new(VOTERS + 1));
    let started = Instant::now();
    let mut login_time = Duration::ZERO;
    let mut peak = 0;
    let outcomes: Vec<Result<String, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = creds
            .iter()
            .map(|(srn, credential)| {
                let (connector, connected, replied) = (&connector, &connected, &replied);
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let mut line = String::new();
                        let tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
                        tcp.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                        let tls = connector.connect("localhost", tcp);
                        let mut tls = BufReader::new(tls.expect("handshake"));
                        let hello = b"{\"id\":1,\"op\":\"hello\",\"version\":1}\n";
                        tls.get_mut().write_all(hello).unwrap();
                        tls.read_line(&mut line).unwrap();
                        assert!(line.contains("\"ok\":true"), "{line}");
                        connected.wait();
                        let login = serde_json::json!({
                            "id": 2, "op": "login_voter",
                            "srn": srn, "credential": credential.expose(),
                        });
                        let mut request = serde_json::to_vec(&login).unwrap();
                        request.push(b'\n');
                        line.clear();
                        let outcome = match tls.get_mut().write_all(&request) {
                            Ok(()) => match tls.read_line(&mut line) {
                                Ok(n) if n > 0 => Ok(line.clone()),
                                other => Err(format!("no answer: {other:?}")),
                            },
                            Err(e) => Err(format!("write: {e}")),
                        };
                        // Stay connected until everyone has an answer.
                        replied.wait();
                        outcome
                    })
                    .expect("spawn")
            })
            .collect();
        connected.wait();
        let burst = Instant::now();
        replied.wait();
        login_time = burst.elapsed();
        peak = peak_rss_kib(pid);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let signed_in = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(l) if l.contains("\"role\":\"voter\"")))
        .count();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let bound = design_bound_kib(VOTERS as u64, cores);
    println!(
        "{VOTERS} simultaneous sign-ins: {signed_in} signed in, all answered within \
         {login_time:.1?} ({:.1?} with the connections); voting serve peak RSS \
         {:.1} MiB (idle {:.1} MiB), bound {:.1} MiB",
        started.elapsed(),
        peak as f64 / 1024.0,
        idle as f64 / 1024.0,
        bound as f64 / 1024.0
    );
    let refused: Vec<_> = outcomes
        .iter()
        .filter(|o| !matches!(o, Ok(l) if l.contains("\"role\":\"voter\"")))
        .collect();
    assert_eq!(
        signed_in,
        VOTERS,
        "not signed in: {:?}",
        &refused[..refused.len().min(5)]
    );
    assert!(
        peak <= bound,
        "peak RSS {peak} KiB over the bound {bound} KiB"
    );
}
