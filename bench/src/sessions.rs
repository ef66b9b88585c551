//! Item 2: whole voter sessions (connect, TLS, hello, sign in, list the
//! candidates, cast, disconnect) against the rate of credential checks the
//! machine can do on all cores.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use voting_core::credentials::{hash_secret, normalize_code, verify_secret};
use voting_core::HashCost;
use voting_net::Client;

use crate::cpu::{self, Meter, Split};
use crate::fixture::{run_threads, Election};
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::{median, ms, percentile, rate};

/// Concurrent sessions.
const CONCURRENCY: usize = 16;
/// The target ratio.
const TARGET_RATIO: f64 = 0.85;

/// Credential verifications with the server's parameters ([`HashCost::VOTER`])
/// on `threads` threads for about `secs` seconds: (verifications, elapsed).
pub fn scrypt_run(threads: usize, secs: f64) -> anyhow::Result<(usize, Duration)> {
    let credential = voting_core::credentials::generate_voter_credential()?;
    let typed = normalize_code(credential.expose());
    let phc = hash_secret(&typed, HashCost::VOTER)?;
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut spawned = Ok(());
        for _ in 0..threads {
            let started = std::thread::Builder::new()
                .name("bench-scrypt".into())
                .spawn_scoped(scope, || {
                    while !stop.load(Ordering::Relaxed) {
                        if verify_secret(&typed, &phc) {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            if let Err(e) = started {
                spawned = Err(e);
                break;
            }
        }
        if spawned.is_ok() {
            std::thread::sleep(Duration::from_secs_f64(secs));
        }
        stop.store(true, Ordering::Relaxed);
        spawned.context("cannot start a hashing thread")
    })?;
    let n = done.load(Ordering::Relaxed);
    anyhow::ensure!(n > 0, "no credential verified");
    Ok((n, start.elapsed()))
}

/// Credential verifications per second on `threads` threads (see [`scrypt_run`]).
pub fn scrypt_rate(threads: usize, secs: f64) -> anyhow::Result<f64> {
    let (n, elapsed) = scrypt_run(threads, secs)?;
    Ok(n as f64 / elapsed.as_secs_f64())
}

/// How long each step of one session took.
#[derive(Default, Clone, Copy)]
struct Steps {
    connect: Duration,
    login: Duration,
    candidates: Duration,
    cast: Duration,
    close: Duration,
    whole: Duration,
}

/// Measures item 2 with `sessions` voters of `e`'s roll, in `segments` parts;
/// the ceiling is measured for `ceiling_secs` before every part and after the
/// last, so that both see the same load on the machine.
pub fn run(
    e: &Election,
    sessions: usize,
    segments: usize,
    ceiling_secs: f64,
) -> anyhow::Result<ItemReport> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let permits = e.store.hash_limiter().permits();
    let sessions = sessions.min(e.voters.len());
    let segments = segments.clamp(1, sessions.max(1));
    e.reset_votes()?;
    let (mut verified, mut ceiling_time) = scrypt_run(cores, ceiling_secs)?;
    let mut steps: Vec<Steps> = Vec::with_capacity(sessions);
    let mut session_time = Duration::ZERO;
    let mut split = Split::empty();
    for k in 0..segments {
        let range = (sessions * k / segments)..(sessions * (k + 1) / segments);
        let next = AtomicUsize::new(range.start);
        let meter = Meter::start();
        let start = Instant::now();
        let per_thread = run_threads(CONCURRENCY, 256 * 1024, |_| {
            let mut steps = Vec::new();
            let cpu = cpu::thread();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= range.end {
                    return Ok((steps, cpu::thread().saturating_sub(cpu)));
                }
                steps.push(session(e, i).with_context(|| format!("session {i} failed"))?);
            }
        })?;
        session_time += start.elapsed();
        split.add(meter.finish(per_thread.iter().map(|t| t.1).sum()));
        steps.extend(per_thread.into_iter().flat_map(|t| t.0));
        let (n, t) = scrypt_run(cores, ceiling_secs)?;
        verified += n;
        ceiling_time += t;
    }
    e.reset_votes()?;
    let served = sessions as f64 / session_time.as_secs_f64();
    let ceiling = verified as f64 / ceiling_time.as_secs_f64();
    let ratio = served / ceiling;
    println!(
        "  sessions {} /s, credential checks {} /s, ratio {ratio:.2}",
        rate(served),
        rate(ceiling)
    );

    let mut headline = Table::new(&[
        "C",
        "sessions",
        "sessions/s",
        "ceiling: scrypt verifications/s",
        "ratio",
    ]);
    headline.row(vec![
        CONCURRENCY.to_string(),
        format!("{sessions} in {segments} parts"),
        rate(served),
        rate(ceiling),
        format!("{ratio:.2}"),
    ]);
    let mut breakdown = Table::new(&["step", "median", "p99"]);
    let column = |f: fn(&Steps) -> Duration| {
        let mut v: Vec<Duration> = steps.iter().map(f).collect();
        let med = median(&mut v);
        (ms(med), percentile(&v, 99.0).map_or("–".into(), ms))
    };
    for (name, f) in [
        (
            "connect + TLS handshake + hello",
            (|s: &Steps| s.connect) as fn(&Steps) -> Duration,
        ),
        ("login_voter (scrypt check)", |s| s.login),
        ("candidates", |s| s.candidates),
        ("cast", |s| s.cast),
        ("disconnect", |s| s.close),
        ("whole session", |s| s.whole),
    ] {
        let (m, p) = column(f);
        breakdown.row(vec![name.to_string(), m, p]);
    }
    // One verification's CPU, from the ceiling: all cores busy for 1/rate each.
    let scrypt_cpu = Duration::from_secs_f64(cores as f64 / ceiling);
    let mut cpu_table = Table::new(&["CPU per session", "time", "of which scrypt"]);
    let db = split.database.unwrap_or_default();
    for (who, d) in [
        ("client (bench threads: TLS, JSON)", split.client),
        ("server (in-process)", split.server),
        ("MariaDB", db),
        ("total", split.client + split.server + db),
    ] {
        let scrypt = if who.starts_with("server") || who == "total" {
            cpu::per_op(scrypt_cpu * sessions as u32, sessions)
        } else {
            "–".into()
        };
        cpu_table.row(vec![who.to_string(), cpu::per_op(d, sessions), scrypt]);
    }
    Ok(ItemReport {
        number: 2,
        title: "Full voter sessions",
        method: format!(
            "{CONCURRENCY} client threads each run whole sessions for fresh voters — `Client::connect` \
             (TCP, TLS handshake, hello), `login_voter`, `candidates`, `cast`, drop — until \
             {sessions} voters have voted, in {segments} parts. The ceiling is scrypt verifications \
             per second with the server's parameters (`HashCost::VOTER`: log_n = 10, r = 8, p = 1) \
             on all {cores} cores, measured before every part and after the last. The server runs \
             {permits} credential checks at once. CPU per session comes from /proc (client threads' \
             own time; the rest of this process is the server; `mariadbd` as a whole)."
        ),
        tables: vec![headline, breakdown, cpu_table],
        verdict: Verdict {
            figure: format!("{} sessions/s", rate(served)),
            ceiling: format!("{} verifications/s", rate(ceiling)),
            ratio: Some(ratio),
            target: format!("≥ {TARGET_RATIO} of the ceiling"),
            met: Some(ratio >= TARGET_RATIO),
        },
        notes: Vec::new(),
    })
}

/// One whole session for voter `i`.
fn session(e: &Election, i: usize) -> anyhow::Result<Steps> {
    let (srn, credential) = &e.voters[i];
    let t0 = Instant::now();
    let mut client = Client::connect(&e.addr, &e.client_config)?;
    let t1 = Instant::now();
    client.login_voter(srn, credential)?;
    let t2 = Instant::now();
    let candidates = client.candidates()?;
    let t3 = Instant::now();
    let choice = &candidates
        .get(i % candidates.len().max(1))
        .context("no candidates")?
        .srn;
    client.cast(choice)?;
    let t4 = Instant::now();
    drop(client);
    let t5 = Instant::now();
    Ok(Steps {
        connect: t1 - t0,
        login: t2 - t1,
        candidates: t3 - t2,
        cast: t4 - t3,
        close: t5 - t4,
        whole: t5 - t0,
    })
}
