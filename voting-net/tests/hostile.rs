//! A barrage of hostile input, 1,000 cases of each kind, against one server while
//! a normal voter keeps voting: every case is answered or its connection closed,
//! nothing panics, no connection is left behind, and every vote succeeds.
//! Real MariaDB, real TLS on loopback.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use voting_core::{Secret, Srn};
use voting_net::{Client, NetError, Op};
use voting_testkit::TestServer;

/// Cases of each kind.
const CASES: usize = 1000;
/// Lines per connection for the kinds after which a connection goes on.
const LINES_PER_CONNECTION: usize = 50;
/// Threads sending the barrage (the voter has its own).
const WORKERS: usize = 4;

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    PlainTcpProbe,
    RandomBytesAfterTls,
    TruncatedJson,
    LineOverLimit,
    UnknownOp,
    WrongType,
    HugeNumber,
    InvalidUtf8,
}

/// What happened to one case.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    cases: usize,
    answered: usize,
    closed: usize,
    busy: Duration,
}

/// One unit of work for a barrage thread.
enum Job {
    /// One case that needs a connection of its own.
    Single(Kind, usize),
    /// Many lines of one kind on one connection: (line, what the reply must be).
    Lines(Kind, Vec<(Vec<u8>, Expect)>),
}

/// The reply a line must get.
#[derive(Debug, Clone)]
enum Expect {
    /// An error with this code, echoing this id (`None`: the id was unreadable).
    Error(&'static str, Option<u64>),
    /// Success, echoing this id.
    Ok(u64),
}

struct Target<'a> {
    server: &'a TestServer,
    /// Built once: under OpenSSL 3 a connector costs tens of ms of CPU to build
    /// (it loads the system's CA bundle), far more than a handshake.
    connector: native_tls::TlsConnector,
    failures: Mutex<Vec<String>>,
}

impl Target<'_> {
    /// A TLS connection that has done its handshake and nothing else.
    fn tls(&self) -> native_tls::TlsStream<TcpStream> {
        let tcp = TcpStream::connect(self.server.handle().local_addr()).expect("tcp");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // Without it, Nagle plus the server's delayed ACK stalls each big write ~40 ms.
        tcp.set_nodelay(true).unwrap();
        self.connector.connect("localhost", tcp).expect("handshake")
    }

    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    fn run(&self, job: Job) -> (Kind, Tally) {
        let started = Instant::now();
        let (kind, mut tally) = self.run_timed(job);
        tally.busy = started.elapsed();
        (kind, tally)
    }

    fn run_timed(&self, job: Job) -> (Kind, Tally) {
        match job {
            Job::Single(kind, i) => {
                let mut rng = Rng::new(((kind as u64) << 32) + i as u64);
                let answered = match kind {
                    Kind::PlainTcpProbe => self.plain_probe(i, &mut rng),
                    Kind::RandomBytesAfterTls => self.random_after_tls(i, &mut rng),
                    Kind::LineOverLimit => self.over_limit(i, &mut rng),
                    _ => unreachable!("{kind:?} is sent in batches"),
                };
                let tally = Tally {
                    cases: 1,
                    answered: usize::from(answered),
                    closed: usize::from(!answered),
                    busy: Duration::ZERO,
                };
                (kind, tally)
            }
            Job::Lines(kind, lines) => (kind, self.lines(kind, &lines)),
        }
    }

    /// Not TLS at all: the handshake fails and the server closes.
    fn plain_probe(&self, i: usize, rng: &mut Rng) -> bool {
        let probe: Vec<u8> = match i % 6 {
            0 => b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            1 => b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(),
            2 => Vec::new(),
            // A TLS record header announcing more than follows.
            3 => b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03".to_vec(),
            4 => b"{\"id\":1,\"op\":\"hello\",\"version\":1}\n".to_vec(),
            _ => {
                let len = 1 + rng.below(2048);
                rng.bytes(len)
            }
        };
        let addr = self.server.handle().local_addr();
        let mut tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The server may give up before reading it all; that is an answer too.
        let _ = tcp.write_all(&probe);
        let _ = tcp.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        match tcp.read_to_end(&mut reply) {
            Ok(_) => !reply.is_empty(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.fail(format!(
                    "plain probe {i}: neither answered nor closed in 10 s"
                ));
                false
            }
            Err(_) => false, // reset: closed
        }
    }

    /// Random bytes (newlines included, by chance) over TLS, then close_notify:
    /// every complete line gets an error, then the server closes.
    fn random_after_tls(&self, i: usize, rng: &mut Rng) -> bool {
        let mut tls = self.tls();
        let len = 1 + rng.below(4096);
        let bytes = rng.bytes(len);
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        if tls.write_all(&bytes).is_err() {
            return false;
        }
        let _ = tls.shutdown();
        let mut reply = Vec::new();
        match tls.read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                self.fail(format!("random bytes {i}: no close in 10 s"));
                return false;
            }
            Err(_) => {}
        }
        let replies: Vec<&[u8]> = reply
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        for r in &replies {
            let v: Value = serde_json::from_slice(r).unwrap_or(Value::Null);
            let code = v["error"]["code"].as_str().unwrap_or("");
            if v["ok"] != false || !["malformed_request", "unknown_op"].contains(&code) {
                self.fail(format!(
                    "random bytes {i}: reply {}",
                    String::from_utf8_lossy(r)
                ));
            }
        }
        // A line the server read whole is answered (a trailing partial one is not).
        if replies.len() > lines {
            self.fail(format!(
                "random bytes {i}: {} replies to {lines} lines",
                replies.len()
            ));
        }
        !replies.is_empty()
    }

    /// One line past the limit: `line_too_long`, then the server closes.
    fn over_limit(&self, i: usize, rng: &mut Rng) -> bool {
        let mut tls = self.tls();
        let mut line = b"{\"id\":1,\"op\":\"verify\",\"receipt\":\"".to_vec();
        let len = voting_net::protocol::MAX_REQUEST_LINE + 1 + rng.below(8 * 1024);
        line.resize(len, b'A');
        line.push(b'\n');
        let _ = tls.write_all(&line);
        let mut reply = String::new();
        let _ = tls.read_to_string(&mut reply);
        let first: Value =
            serde_json::from_str(reply.lines().next().unwrap_or("")).unwrap_or(Value::Null);
        let answered = first["error"]["code"] == "line_too_long";
        if !answered {
            self.fail(format!("over limit {i}: got {reply:?}"));
        }
        answered
    }

    /// A batch on one connection (after hello): each line gets its expected reply.
    fn lines(&self, kind: Kind, lines: &[(Vec<u8>, Expect)]) -> Tally {
        let tls = self.tls();
        let mut reader = BufReader::new(tls);
        let mut send = b"{\"id\":0,\"op\":\"hello\",\"version\":1}\n".to_vec();
        for (line, _) in lines {
            send.extend_from_slice(line);
            send.push(b'\n');
        }
        reader.get_mut().write_all(&send).expect("write");
        let mut tally = Tally::default();
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("hello reply");
        assert!(reply.contains("\"ok\":true"), "hello: {reply}");
        for (line, expect) in lines {
            tally.cases += 1;
            reply.clear();
            if reader.read_line(&mut reply).unwrap_or(0) == 0 {
                tally.closed += 1;
                self.fail(format!("{kind:?}: closed before answering {}", show(line)));
                continue;
            }
            tally.answered += 1;
            let v: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
            let good = match expect {
                Expect::Ok(id) => v["ok"] == true && v["id"] == *id,
                Expect::Error(code, id) => {
                    v["ok"] == false
                        && v["error"]["code"] == *code
                        && v["id"] == id.map_or(Value::Null, Value::from)
                }
            };
            if !good {
                self.fail(format!(
                    "{kind:?}: {} → {reply} (expected {expect:?})",
                    show(line)
                ));
            }
        }
        tally
    }
}

fn show(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    text.chars().take(120).collect()
}

/// Valid lines of several ops (for truncation).
fn valid_lines(id: u64) -> Vec<String> {
    vec![
        format!("{{\"id\":{id},\"op\":\"tally\"}}"),
        format!("{{\"id\":{id},\"op\":\"login_voter\",\"srn\":\"S1\",\"credential\":\"AAAAA-BBBBB\"}}"),
        format!("{{\"id\":{id},\"op\":\"cast\",\"candidate\":\"C1\"}}"),
        format!("{{\"id\":{id},\"op\":\"voter_add\",\"srn\":\"X1\",\"first_name\":\"A\",\"last_name\":\"B\",\"dob\":\"1990-01-01\"}}"),
        format!("{{\"id\":{id},\"op\":\"audit\",\"after\":0,\"limit\":5}}"),
    ]
}

fn truncated_json(i: usize, rng: &mut Rng) -> (Vec<u8>, Expect) {
    let lines = valid_lines(i as u64);
    let full = &lines[i % lines.len()];
    let cut = 1 + rng.below(full.len() - 1);
    (
        full.as_bytes()[..cut].to_vec(),
        Expect::Error("malformed_request", None),
    )
}

fn unknown_op(i: usize, rng: &mut Rng) -> (Vec<u8>, Expect) {
    let name: String = match i % 5 {
        0 => String::new(),
        1 => "HELLO".into(),
        2 => "cast ".into(),
        3 => "x".repeat(1 + rng.below(2000)),
        _ => (0..1 + rng.below(30))
            .map(|_| (b'a' + rng.below(26) as u8) as char)
            .collect(),
    };
    assert!(Op::from_name(&name).is_none());
    let line = serde_json::json!({ "id": i, "op": name });
    (
        serde_json::to_vec(&line).unwrap(),
        Expect::Error("unknown_op", Some(i as u64)),
    )
}

fn wrong_type(i: usize) -> (Vec<u8>, Expect) {
    let id = i as u64;
    let m = |s: String| (s.into_bytes(), Expect::Error("malformed_request", Some(id)));
    let no_id = |s: String| (s.into_bytes(), Expect::Error("malformed_request", None));
    match i % 12 {
        0 => no_id(format!("{{\"id\":\"{id}\",\"op\":\"tally\"}}")),
        1 => no_id(format!("{{\"id\":[{id}],\"op\":\"tally\"}}")),
        2 => m(format!("{{\"id\":{id},\"op\":7}}")),
        3 => m(format!(
            "{{\"id\":{id},\"op\":\"hello\",\"version\":\"1\"}}"
        )),
        4 => m(format!(
            "{{\"id\":{id},\"op\":\"cast\",\"candidate\":{{\"srn\":\"C1\"}}}}"
        )),
        5 => m(format!(
            "{{\"id\":{id},\"op\":\"verify\",\"receipt\":null}}"
        )),
        6 => m(format!(
            "{{\"id\":{id},\"op\":\"login_voter\",\"srn\":[\"S1\"],\"credential\":\"x\"}}"
        )),
        7 => m(format!(
            "{{\"id\":{id},\"op\":\"import_rows\",\"voters\":\"all of them\"}}"
        )),
        8 => m(format!("{{\"id\":{id},\"op\":\"audit\",\"after\":\"0\"}}")),
        9 => m(format!(
            "{{\"id\":{id},\"op\":\"login_admin\",\"name\":true,\"password\":false}}"
        )),
        10 => no_id(format!("[{{\"id\":{id},\"op\":\"tally\"}}]")),
        _ => no_id(format!("\"{{\\\"id\\\":{id},\\\"op\\\":\\\"tally\\\"}}\"")),
    }
}

fn huge_number(i: usize, rng: &mut Rng) -> (Vec<u8>, Expect) {
    let id = i as u64;
    // Past f64's range the number is not even JSON to the parser (no id); past
    // u64's but within f64's it is a float where an integer belongs.
    let digits = |rng: &mut Rng, n: usize| -> String {
        (0..n)
            .map(|_| (b'0' + rng.below(10) as u8) as char)
            .collect()
    };
    let n = 400 + rng.below(4600);
    let beyond_f64 = digits(rng, n);
    let n = 20 + rng.below(280);
    let beyond_u64 = digits(rng, n);
    let malformed = |s: String, id| (s.into_bytes(), Expect::Error("malformed_request", id));
    match i % 10 {
        0 => (
            format!("{{\"id\":{},\"op\":\"tally\"}}", u64::MAX).into_bytes(),
            Expect::Ok(u64::MAX),
        ),
        1 => malformed(
            "{\"id\":18446744073709551616,\"op\":\"tally\"}".into(),
            None,
        ),
        2 => malformed("{\"id\":1e400,\"op\":\"tally\"}".into(), None),
        3 => malformed(format!("{{\"id\":9{beyond_f64},\"op\":\"tally\"}}"), None),
        4 => malformed(format!("{{\"id\":-{id},\"op\":\"tally\"}}"), None),
        5 => malformed(
            format!("{{\"id\":{id},\"op\":\"hello\",\"version\":4294967296}}"),
            Some(id),
        ),
        6 => (
            format!("{{\"id\":{id},\"op\":\"hello\",\"version\":4294967295}}").into_bytes(),
            Expect::Error("unsupported_version", Some(id)),
        ),
        7 => (
            format!(
                "{{\"id\":{id},\"op\":\"audit\",\"after\":{},\"limit\":{}}}",
                u64::MAX,
                u32::MAX
            )
            .into_bytes(),
            Expect::Error("forbidden", Some(id)),
        ),
        8 => malformed(
            format!("{{\"id\":{id},\"op\":\"audit\",\"after\":1e30}}"),
            Some(id),
        ),
        _ => malformed(
            format!("{{\"id\":{id},\"op\":\"audit\",\"limit\":9{beyond_u64}}}"),
            Some(id),
        ),
    }
}

fn invalid_utf8(i: usize, rng: &mut Rng) -> (Vec<u8>, Expect) {
    const BAD: [&[u8]; 6] = [
        b"\xff\xfe",
        b"\xc3\x28",
        b"\xc0\xaf",         // overlong '/'
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\x80\x80",         // lone continuation bytes
        b"\xf4\x90\x80\x80", // past U+10FFFF
    ];
    let bad = BAD[i % BAD.len()];
    let mut line = match i % 4 {
        0 => b"{\"id\":1,\"op\":\"verify\",\"receipt\":\"AB".to_vec(),
        1 => b"{\"id\":1,\"op\":\"".to_vec(),
        2 => b"{\"".to_vec(),
        _ => Vec::new(),
    };
    line.extend_from_slice(bad);
    if i % 4 < 3 {
        line.extend_from_slice(b"\"}");
    } else {
        let len = rng.below(64);
        line.extend(rng.bytes(len).into_iter().filter(|&b| b != b'\n'));
    }
    (line, Expect::Error("malformed_request", None))
}

fn jobs() -> Vec<Job> {
    let mut jobs = Vec::new();
    for kind in [
        Kind::PlainTcpProbe,
        Kind::RandomBytesAfterTls,
        Kind::LineOverLimit,
    ] {
        jobs.extend((0..CASES).map(|i| Job::Single(kind, i)));
    }
    for kind in [
        Kind::TruncatedJson,
        Kind::UnknownOp,
        Kind::WrongType,
        Kind::HugeNumber,
        Kind::InvalidUtf8,
    ] {
        let mut rng = Rng::new(kind as u64);
        let cases: Vec<(Vec<u8>, Expect)> = (1..=CASES)
            .map(|i| match kind {
                Kind::TruncatedJson => truncated_json(i, &mut rng),
                Kind::UnknownOp => unknown_op(i, &mut rng),
                Kind::WrongType => wrong_type(i),
                Kind::HugeNumber => huge_number(i, &mut rng),
                _ => invalid_utf8(i, &mut rng),
            })
            .collect();
        for chunk in cases.chunks(LINES_PER_CONNECTION) {
            jobs.push(Job::Lines(kind, chunk.to_vec()));
        }
    }
    // Interleave the kinds, so the server sees all of them at once.
    let mut rng = Rng::new(42);
    for i in (1..jobs.len()).rev() {
        jobs.swap(i, rng.below(i + 1));
    }
    jobs
}

#[test]
fn a_barrage_of_hostile_input_never_stops_a_voter() {
    let panics = Arc::new(AtomicUsize::new(0));
    let default_hook = std::panic::take_hook();
    let counted = Arc::clone(&panics);
    std::panic::set_hook(Box::new(move |info| {
        counted.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));

    let server = TestServer::start();
    let creds = server.seed(3, 1000);
    server.open();
    let started = Instant::now();
    let ca = std::fs::read(server.certs.ca()).unwrap();
    let target = Target {
        server: &server,
        connector: native_tls::TlsConnector::builder()
            .disable_built_in_roots(true)
            .add_root_certificate(native_tls::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap(),
        failures: Mutex::new(Vec::new()),
    };
    let jobs = Mutex::new(jobs());
    let done = AtomicBool::new(false);
    let mut results: std::collections::BTreeMap<Kind, Tally> = Default::default();
    let (votes, vote_errors, slowest_vote) = std::thread::scope(|scope| {
        // A polling-station kiosk: one connection signs in voter after voter,
        // and is replaced every ten voters.
        let voter = scope.spawn(|| {
            let (mut votes, mut errors, mut slowest) = (Vec::new(), Vec::new(), Duration::ZERO);
            let mut kiosk: Option<Client> = None;
            for (n, (srn, credential)) in creds.iter().enumerate() {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let t = Instant::now();
                let candidate: Srn = format!("C{}", 1 + n % 3).parse().unwrap();
                if n % 10 == 0 {
                    kiosk = None;
                }
                let outcome = vote(&server, &mut kiosk, srn, credential, &candidate);
                slowest = slowest.max(t.elapsed());
                match outcome {
                    Ok(receipt) => votes.push((receipt, candidate)),
                    Err(e) => {
                        errors.push(format!("{srn}: {e}"));
                        kiosk = None;
                    }
                }
            }
            (votes, errors, slowest)
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let job = jobs.lock().unwrap().pop();
                        match job {
                            Some(job) => mine.push(target.run(job)),
                            None => return mine,
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            for (kind, t) in w.join().unwrap() {
                let sum = results.entry(kind).or_default();
                sum.cases += t.cases;
                sum.answered += t.answered;
                sum.closed += t.closed;
                sum.busy += t.busy;
            }
        }
        done.store(true, Ordering::SeqCst);
        voter.join().unwrap()
    });
    let barrage = started.elapsed();

    println!("hostile barrage: {barrage:.1?} with {WORKERS} threads");
    for (kind, t) in &results {
        println!(
            "  {kind:?}: {} cases, {} answered, {} closed without an answer ({:.1?} of connection time)",
            t.cases, t.answered, t.closed, t.busy
        );
    }
    println!(
        "  meanwhile {} votes, {} failed, slowest {slowest_vote:.1?}",
        votes.len(),
        vote_errors.len()
    );
    let failures = target.failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(results.len(), 8);
    assert!(results.values().all(|t| t.cases == CASES), "{results:?}");
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked");

    assert!(vote_errors.is_empty(), "{vote_errors:?}");
    assert!(
        votes.len() >= 20,
        "only {} votes during the barrage",
        votes.len()
    );
    let tally = server.store.tally().unwrap();
    assert_eq!(
        (tally.ballots, tally.voted),
        (votes.len() as u64, votes.len() as u64)
    );
    for (receipt, candidate) in &votes {
        let check = server.store.verify_receipt(receipt).unwrap();
        assert_eq!(&check.candidate, candidate);
    }

    // Every hostile connection is gone (each closes within its linger time).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.handle().active_connections() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        server.handle().active_connections(),
        0,
        "connections left open"
    );
}

/// What a voter does at the kiosk: sign in, cast (connecting first if needed).
fn vote(
    server: &TestServer,
    kiosk: &mut Option<Client>,
    srn: &str,
    credential: &Secret,
    candidate: &Srn,
) -> Result<String, NetError> {
    let c = match kiosk {
        Some(c) => c,
        None => kiosk.insert(Client::connect(&server.addr(), &server.client_config())?),
    };
    c.login_voter(srn, credential)?;
    let receipt = c.cast(candidate)?;
    Ok(receipt.receipt.expose().to_string())
}
