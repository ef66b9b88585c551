//! Item 1: cast throughput through the real server against the same SQL
//! transaction issued straight through the `mysql` crate, at several
//! concurrencies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use mysql::prelude::Queryable;
use mysql::TxOpts;
use voting_net::Client;

use crate::cpu::{self, Meter, Split};
use crate::fixture::{lock, run_threads, Election};
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::{ms, percentile, rate};

/// The concurrency the target is stated at.
const TARGET_CONCURRENCY: usize = 16;
/// The target ratio at that concurrency.
const TARGET_RATIO: f64 = 0.9;

/// What one timed round produced.
struct Round {
    elapsed: Duration,
    votes: usize,
    /// Per-vote latency (server rounds only).
    latencies: Vec<Duration>,
    /// Where the CPU went.
    cpu: Split,
}

/// Measures item 1 with the signed-in connections in `pool` (one per voter;
/// every round casts `votes` of them, after making the voters eligible again).
pub fn run(
    e: &Election,
    pool: &[Mutex<Client>],
    levels: &[usize],
    rounds: usize,
) -> anyhow::Result<ItemReport> {
    let votes = pool.len();
    // Warm the server's database pool and statement caches, and MariaDB's
    // buffer pool, before anything counts.
    e.reset_votes()?;
    server_round(e, pool, 64.min(votes), votes / 4)?;
    e.reset_votes()?;
    ceiling_round(e, 16, votes / 4)?;

    let mut table = Table::new(&[
        "C",
        "ceiling (bare SQL) votes/s",
        "server votes/s",
        "ratio",
        "server p50 / p99 per vote",
        "rounds",
    ]);
    let mut cpu_table = Table::new(&[
        "C",
        "ceiling: client (mysql crate) + MariaDB",
        "server path: client (TLS, JSON) + server + MariaDB",
    ]);
    let mut at_target = None;
    for &c in levels {
        let (mut bare, mut served) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            // Alternate the order so that drift in the machine's load hits both.
            for server_first in [r % 2 == 1, r % 2 == 0] {
                e.reset_votes()?;
                if server_first {
                    served.push(server_round(e, pool, c, votes)?);
                } else {
                    bare.push(ceiling_round(e, c, votes)?);
                }
            }
        }
        let ceiling = total_rate(&bare);
        let server = total_rate(&served);
        let ratio = server / ceiling;
        let mut lat: Vec<Duration> = served.iter().flat_map(|r| r.latencies.clone()).collect();
        lat.sort_unstable();
        let p = |q| percentile(&lat, q).map_or("–".into(), ms);
        table.row(vec![
            c.to_string(),
            rate(ceiling),
            rate(server),
            format!("{ratio:.2}"),
            format!("{} / {}", p(50.0), p(99.0)),
            format!("{rounds} × {votes} votes each"),
        ]);
        println!(
            "  C={c:>2}: ceiling {} votes/s, server {} votes/s, ratio {ratio:.2}",
            rate(ceiling),
            rate(server)
        );
        cpu_table.row(vec![
            c.to_string(),
            cpu_cells(&bare, false),
            cpu_cells(&served, true),
        ]);
        if c == TARGET_CONCURRENCY {
            at_target = Some((server, ceiling, ratio));
        }
    }
    e.reset_votes()?;
    let verdict = match at_target {
        Some((server, ceiling, ratio)) => Verdict {
            figure: format!("{} votes/s at C = {TARGET_CONCURRENCY}", rate(server)),
            ceiling: format!("{} votes/s", rate(ceiling)),
            ratio: Some(ratio),
            target: format!("≥ {TARGET_RATIO} of the ceiling at C = {TARGET_CONCURRENCY}"),
            met: Some(ratio >= TARGET_RATIO),
        },
        None => Verdict {
            figure: "not measured at C = 16".into(),
            ceiling: "–".into(),
            ratio: None,
            target: format!("≥ {TARGET_RATIO} of the ceiling at C = {TARGET_CONCURRENCY}"),
            met: None,
        },
    };
    Ok(ItemReport {
        number: 1,
        title: "Cast throughput",
        method: format!(
            "C client threads share {votes} voters who are already signed in, each on its own TLS \
             connection; a thread takes the next connection and casts (`Client::cast`), until every \
             voter has voted once. The ceiling runs the same transaction as `Store::cast_vote` \
             (share-lock the election row, check the candidate, `UPDATE voters … AND NOT voted`, \
             `INSERT` the ballot, `COMMIT`) with C threads and one `mysql::Conn` each, against the \
             same database. Between rounds every voter is made eligible again and the ballot box \
             emptied; ceiling and server rounds alternate, and each figure is all votes over all \
             time of its {rounds} rounds. CPU per vote comes from /proc: the client threads' own \
             time, the rest of this process (the in-process server), and the `mariadbd` process \
             (which also serves anything else using that database server meanwhile)."
        ),
        tables: vec![table, cpu_table],
        verdict,
        notes: Vec::new(),
    })
}

/// CPU per vote over some rounds, as "a + b (+ c) = total µs".
fn cpu_cells(rounds: &[Round], with_server: bool) -> String {
    let votes: usize = rounds.iter().map(|r| r.votes).sum();
    let mut split = Split::empty();
    for r in rounds {
        split.add(r.cpu);
    }
    let us = |d: Duration| d.as_secs_f64() * 1e6 / votes.max(1) as f64;
    let db = split
        .database
        .map_or("?".into(), |d| format!("{:.0}", us(d)));
    let total = us(split.client)
        + us(split.server) * f64::from(u8::from(with_server))
        + split.database.map_or(0.0, us);
    if with_server {
        format!(
            "{:.0} + {:.0} + {db} = {total:.0} µs",
            us(split.client),
            us(split.server)
        )
    } else {
        format!("{:.0} + {db} = {total:.0} µs", us(split.client))
    }
}

fn total_rate(rounds: &[Round]) -> f64 {
    let votes: usize = rounds.iter().map(|r| r.votes).sum();
    let secs: f64 = rounds.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    votes as f64 / secs.max(1e-9)
}

/// `votes` casts through the server by `c` threads.
fn server_round(
    e: &Election,
    pool: &[Mutex<Client>],
    c: usize,
    votes: usize,
) -> anyhow::Result<Round> {
    let votes = votes.min(pool.len());
    let next = AtomicUsize::new(0);
    let meter = Meter::start();
    let start = Instant::now();
    let per_thread = run_threads(c, 256 * 1024, |_| {
        let mut latencies = Vec::new();
        let cpu = cpu::thread();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= votes {
                return Ok((latencies, cpu::thread().saturating_sub(cpu)));
            }
            let t = Instant::now();
            lock(&pool[i])
                .cast(e.candidate(i))
                .with_context(|| format!("cast {i} through the server failed"))?;
            latencies.push(t.elapsed());
        }
    })?;
    let elapsed = start.elapsed();
    let client = per_thread.iter().map(|t| t.1).sum();
    Ok(Round {
        elapsed,
        votes,
        latencies: per_thread.into_iter().flat_map(|t| t.0).collect(),
        cpu: meter.finish(client),
    })
}

/// `votes` bare transactions by `c` threads, one connection each (opened
/// before the clock starts).
fn ceiling_round(e: &Election, c: usize, votes: usize) -> anyhow::Result<Round> {
    let votes = votes.min(e.voters.len());
    let conns = (0..c)
        .map(|_| e.db.conn().map(Mutex::new))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let next = AtomicUsize::new(0);
    let meter = Meter::start();
    let start = Instant::now();
    let per_thread = run_threads(c, 256 * 1024, |t| {
        let mut conn = lock(&conns[t]);
        let cpu = cpu::thread();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= votes {
                return Ok(cpu::thread().saturating_sub(cpu));
            }
            bare_cast(&mut conn, &e.voters[i].0, e.candidate(i).as_str())
                .with_context(|| format!("bare cast {i} failed"))?;
        }
    })?;
    let elapsed = start.elapsed();
    Ok(Round {
        elapsed,
        votes,
        latencies: Vec::new(),
        cpu: meter.finish(per_thread.iter().sum()),
    })
}

/// The statements of `Store::cast_vote`, in its order and with the same kinds
/// of calls (text query for the state lock, prepared statements for the rest).
fn bare_cast(conn: &mut mysql::Conn, srn: &str, candidate: &str) -> anyhow::Result<u64> {
    let mut receipt_hash = [0u8; 32];
    getrandom::fill(&mut receipt_hash).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut tx = conn.start_transaction(TxOpts::default())?;
    let state: Option<String> =
        tx.query_first("SELECT state FROM election WHERE id = 1 LOCK IN SHARE MODE")?;
    anyhow::ensure!(state.as_deref() == Some("open"), "the election is not open");
    let standing: Option<u8> =
        tx.exec_first("SELECT 1 FROM candidates WHERE srn = ?", (candidate,))?;
    anyhow::ensure!(standing.is_some(), "unknown candidate {candidate}");
    tx.exec_drop(
        "UPDATE voters SET voted = TRUE WHERE srn = ? AND NOT voted",
        (srn,),
    )?;
    anyhow::ensure!(tx.affected_rows() == 1, "{srn} has already voted");
    tx.exec_drop(
        "INSERT INTO ballots (candidate_srn, receipt_hash) VALUES (?, ?)",
        (candidate, &receipt_hash[..]),
    )?;
    let id = tx.last_insert_id().context("no ballot id")?;
    tx.commit()?;
    Ok(id)
}
