//! Item 3: how long after a vote is acknowledged its tally reaches the
//! subscribers, with many subscribers while voters cast.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;

use anyhow::Context;
use native_tls::TlsConnector;
use voting_net::Client;

use crate::cpu::{self, Meter};
use crate::fixture::{lock, run_threads, Election};
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::{ms, percentile, rate};

/// Voting clients.
const VOTERS: usize = 16;
/// Target p99 latency.
const TARGET_P99: Duration = Duration::from_millis(50);
/// How long subscribers may take to see the last ballot after voting stops.
const DRAIN: Duration = Duration::from_secs(15);

/// Measures item 3: `subscribers` anonymous subscribed connections, while
/// [`VOTERS`] threads cast one vote on each connection of `pool` (signed-in
/// voters), at most `pace` votes per second in total (`None`: flat out).
pub fn run(
    e: &Election,
    pool: &[Mutex<Client>],
    subscribers: usize,
    pace: Option<f64>,
) -> anyhow::Result<ItemReport> {
    e.reset_votes()?;
    let votes = pool.len();
    let subs = subscribe(e, subscribers)?;
    // Ballots counted before this item's votes (none when the box was emptied;
    // a store that keeps running counts may still show earlier ones).
    let base = subs.iter().map(|s| s.initial).min().unwrap_or(0);
    let stop = AtomicBool::new(false);
    let caught_up = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let meter = Meter::start();
    let phase = Instant::now();
    let (arrivals, acks, vote_time) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let receivers: Vec<_> = subs
            .into_iter()
            .map(|client| {
                let (stop, caught_up) = (&stop, &caught_up);
                std::thread::Builder::new()
                    .name("bench-subscriber".into())
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        receive(client, base + votes as u64, stop, caught_up)
                    })
                    .context("cannot start a subscriber thread")
            })
            .collect::<anyhow::Result<_>>()?;
        // Let every subscriber settle into waiting before votes start.
        std::thread::sleep(Duration::from_millis(300));
        let start = Instant::now();
        let acks = run_threads(VOTERS, 256 * 1024, |_| {
            let mut acks = Vec::new();
            let cpu = cpu::thread();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= votes {
                    return Ok((acks, cpu::thread().saturating_sub(cpu)));
                }
                if let Some(pace) = pace {
                    let due = start + Duration::from_secs_f64(i as f64 / pace);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                let receipt = lock(&pool[i]).cast(e.candidate(i))?;
                acks.push((receipt.ballot_id, Instant::now()));
            }
        });
        let vote_time = start.elapsed();
        let deadline = Instant::now() + DRAIN;
        while caught_up.load(Ordering::SeqCst) < receivers.len() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::SeqCst);
        let arrivals = receivers
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a subscriber thread panicked"))?
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok((arrivals, acks?, vote_time))
    })?;
    let phase = phase.elapsed();
    let voters_cpu: Duration = acks.iter().map(|a| a.1).sum();
    let subscribers_cpu: Duration = arrivals.iter().map(|a| a.1).sum();
    let split = meter.finish(voters_cpu + subscribers_cpu);
    let arrivals: Vec<Vec<(u64, Instant)>> = arrivals.into_iter().map(|a| a.0).collect();
    e.reset_votes()?;
    let mut acks: Vec<(u64, Instant)> = acks.into_iter().flat_map(|a| a.0).collect();
    acks.sort_unstable_by_key(|a| a.0);
    let max_id = acks.last().map_or(0, |a| a.0);

    let lat = latencies(&acks, base, &arrivals);
    let mut all = lat.all;
    let mut first = lat.first;
    all.sort_unstable();
    first.sort_unstable();
    let p = |v: &[Duration], q| percentile(v, q).map_or("–".into(), ms);
    let p99 = percentile(&all, 99.0);
    let events: usize = arrivals.iter().map(Vec::len).sum();
    println!(
        "  {} votes in {}, p50 {} p99 {} (every subscriber), {} events",
        votes,
        ms(vote_time),
        p(&all, 50.0),
        p(&all, 99.0),
        events
    );
    let mut table = Table::new(&[
        "subscribers",
        "voters",
        "votes",
        "votes/s",
        "events per subscriber",
        "p50 / p99 / max (every subscriber)",
        "p50 / p99 (first subscriber)",
    ]);
    table.row(vec![
        arrivals.len().to_string(),
        VOTERS.to_string(),
        votes.to_string(),
        rate(votes as f64 / vote_time.as_secs_f64()),
        format!("{:.0}", events as f64 / arrivals.len().max(1) as f64),
        format!(
            "{} / {} / {}",
            p(&all, 50.0),
            p(&all, 99.0),
            all.last().copied().map_or("–".into(), ms)
        ),
        format!("{} / {}", p(&first, 50.0), p(&first, 99.0)),
    ]);
    let capacity =
        phase.as_secs_f64() * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let share = |d: Duration| format!("{:.0} %", d.as_secs_f64() / capacity * 100.0);
    let mut cpu_table = Table::new(&[
        "phase (votes + delivery)",
        "CPU share of all cores: subscriber threads (benchmark)",
        "voter threads (benchmark)",
        "server",
        "MariaDB",
    ]);
    cpu_table.row(vec![
        format!("{:.1} s", phase.as_secs_f64()),
        share(subscribers_cpu),
        share(voters_cpu),
        share(split.server),
        split.database.map_or("?".into(), share),
    ]);
    let mut notes = vec![format!(
        "{} of {} (vote, subscriber) pairs arrived before the voter had its acknowledgement (counted as 0 ms).",
        lat.early,
        all.len()
    )];
    if lat.missing > 0 {
        notes.push(format!(
            "{} (vote, subscriber) pairs never arrived within {} s of the last vote.",
            lat.missing,
            DRAIN.as_secs()
        ));
    }
    if max_id != votes as u64 {
        notes.push(format!(
            "ballot ids have gaps (highest {max_id} for {votes} votes): latencies use the id as the count."
        ));
    }
    Ok(ItemReport {
        number: 3,
        title: "Live tally latency",
        method: format!(
            "{} anonymous connections subscribe; each has a thread that speaks the protocol directly \
             (TLS, one JSON line per event, only the `ballots` field read, so that decoding in the \
             benchmark takes little of the shared cores) and records when every `tally` event \
             arrives and how many ballots it counts. Then {VOTERS} threads cast {votes} \
             votes ({}) through signed-in connections, each recording when its acknowledgement came \
             and the ballot id. A vote with ballot id n (ids restart at 1 in the emptied box) counts as \
             arrived at a subscriber with the first event showing ≥ b + n ballots, b being the \
             count before the first vote. Latency = arrival − acknowledgement, for every \
             (vote, subscriber) pair; the \"first subscriber\" column takes, per vote, the earliest \
             subscriber. Subscribers, voters and the server share the machine's cores.",
            arrivals.len(),
            pace.map_or("flat out".into(), |p| format!("paced at {} votes/s in total", rate(p)))
        ),
        tables: vec![table, cpu_table],
        verdict: Verdict {
            figure: format!("p99 {}", p99.map_or("–".into(), ms)),
            ceiling: "–".into(),
            ratio: None,
            target: format!("p99 ≤ {} ms", TARGET_P99.as_millis()),
            met: Some(lat.missing == 0 && p99.is_some_and(|p| p <= TARGET_P99)),
        },
        notes,
    })
}

/// A subscriber that speaks the protocol directly over TLS and reads only
/// the `ballots` field of each event: the benchmark's own decoding should not
/// take the cores the server needs (real subscribers are elsewhere).
struct Subscriber {
    stream: native_tls::TlsStream<TcpStream>,
    buf: Vec<u8>,
    /// Ballots in the tally `subscribe` answered with.
    initial: u64,
}

impl Subscriber {
    /// Connects, says hello and subscribes.
    fn connect(addr: &str, connector: &TlsConnector) -> anyhow::Result<Subscriber> {
        let tcp = TcpStream::connect(addr).with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        let stream = connector
            .connect("localhost", tcp)
            .map_err(|e| anyhow::anyhow!("TLS handshake failed: {e}"))?;
        let mut sub = Subscriber {
            stream,
            buf: Vec::new(),
            initial: 0,
        };
        sub.stream.write_all(
            b"{\"id\":1,\"op\":\"hello\",\"version\":1}\n{\"id\":2,\"op\":\"subscribe\"}\n",
        )?;
        let mut answered = 0;
        while answered < 2 {
            let line = sub.line()?.context("the server closed the connection")?;
            let text = String::from_utf8_lossy(&line);
            if text.contains("\"id\":") {
                anyhow::ensure!(text.contains("\"ok\":true"), "refused: {text}");
                answered += 1;
                if text.starts_with("{\"id\":2,") {
                    sub.initial = ballots_field(&text).context("no ballots in the tally")?;
                }
            }
        }
        Ok(sub)
    }

    /// The next line, or `None` when the read timed out.
    fn line(&mut self) -> anyhow::Result<Option<Vec<u8>>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => anyhow::bail!("the server closed the connection"),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None)
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The `ballots` count of a `tally` event line, if it is one.
fn ballots_of(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    if !text.starts_with("{\"event\":\"tally\"") {
        return None;
    }
    ballots_field(text)
}

/// The number after the first `"ballots":` in a line.
fn ballots_field(text: &str) -> Option<u64> {
    let rest = &text[text.find("\"ballots\":")? + "\"ballots\":".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `n` subscribed connections.
fn subscribe(e: &Election, n: usize) -> anyhow::Result<Vec<Subscriber>> {
    let ca = std::fs::read(e.ca_path()).context("cannot read the CA")?;
    let connector = TlsConnector::builder()
        .disable_built_in_roots(true)
        .add_root_certificate(native_tls::Certificate::from_pem(&ca)?)
        .build()?;
    let slots: Vec<Mutex<Option<Subscriber>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    run_threads(8, 256 * 1024, |_| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(());
        }
        *lock(&slots[i]) = Some(Subscriber::connect(&e.addr, &connector)?);
    })?;
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .context("a subscriber is missing")
        })
        .collect()
}

/// A subscriber's loop: records (ballots, arrival) of every tally event until
/// told to stop; counts itself in `caught_up` once it has seen `expected` ballots.
type Arrivals = (Vec<(u64, Instant)>, Duration);

/// Returns the arrivals and the thread's own CPU time.
fn receive(
    mut sub: Subscriber,
    expected: u64,
    stop: &AtomicBool,
    caught_up: &AtomicUsize,
) -> anyhow::Result<Arrivals> {
    let cpu = cpu::thread();
    sub.stream
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut seen = Vec::new();
    let mut done = false;
    while !stop.load(Ordering::SeqCst) {
        let Some(line) = sub.line()? else { continue };
        let arrived = Instant::now();
        if let Some(ballots) = ballots_of(&line) {
            seen.push((ballots, arrived));
            if !done && ballots >= expected {
                done = true;
                caught_up.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    Ok((seen, cpu::thread().saturating_sub(cpu)))
}

/// Latencies computed from the votes' acknowledgements and the subscribers' arrivals.
struct Latencies {
    /// One per (vote, subscriber) pair that arrived.
    all: Vec<Duration>,
    /// One per vote: the earliest subscriber.
    first: Vec<Duration>,
    /// Pairs whose event arrived before the acknowledgement.
    early: usize,
    /// Pairs that never arrived.
    missing: usize,
}

fn latencies(acks: &[(u64, Instant)], base: u64, arrivals: &[Vec<(u64, Instant)>]) -> Latencies {
    let mut out = Latencies {
        all: Vec::with_capacity(acks.len() * arrivals.len()),
        first: Vec::with_capacity(acks.len()),
        early: 0,
        missing: 0,
    };
    // Per subscriber, the running maximum of ballots seen, so that a binary
    // search finds the first event showing at least n ballots.
    let monotone: Vec<Vec<(u64, Instant)>> = arrivals
        .iter()
        .map(|events| {
            let mut max = 0;
            events
                .iter()
                .map(|&(b, t)| {
                    max = max.max(b);
                    (max, t)
                })
                .collect()
        })
        .collect();
    for &(id, ack) in acks {
        let mut earliest: Option<Duration> = None;
        for events in &monotone {
            let k = events.partition_point(|&(b, _)| b < base + id);
            let Some(&(_, arrived)) = events.get(k) else {
                out.missing += 1;
                continue;
            };
            let d = match arrived.checked_duration_since(ack) {
                Some(d) => d,
                None => {
                    out.early += 1;
                    Duration::ZERO
                }
            };
            out.all.push(d);
            earliest = Some(earliest.map_or(d, |e| e.min(d)));
        }
        if let Some(d) = earliest {
            out.first.push(d);
        }
    }
    out
}
