//! Item 6: what one tally costs as the ballot box grows.

use std::time::{Duration, Instant};

use anyhow::Context;
use mysql::prelude::Queryable;
use mysql::{TxOpts, Value};

use crate::env::BenchDb;
use crate::fixture::{has_running_counts, seed, CANDIDATES};
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::{median, ms, percentile, thousands};

/// Tallies timed per size (after a few untimed ones).
const SAMPLES: usize = 21;
/// Rows per seeding INSERT.
const CHUNK: usize = 1_000;
/// "Grows slowly": at most this factor from the smallest to the largest box,
/// which holds 100 times the ballots.
const MAX_GROWTH: f64 = 5.0;

/// Measures item 6 at each of `sizes` ballots (ascending).
pub fn run(server_url: &str, sizes: &[usize]) -> anyhow::Result<ItemReport> {
    let db = BenchDb::create(server_url)?;
    let store = seed(&db, 0, true)?.store;
    let mut conn = db.conn()?;
    let mut table = Table::new(&[
        "ballots",
        "tally median",
        "tally p90",
        "change token median",
        "index entries read per tally",
        "× the smallest box",
    ]);
    let mut have = 0;
    let mut first: Option<Duration> = None;
    let mut last = (0, Duration::ZERO);
    for &size in sizes {
        grow(&mut conn, have, size).context("cannot seed ballots")?;
        have = size;
        let tally = store.tally()?;
        anyhow::ensure!(
            tally.ballots == size as u64,
            "the box holds {} ballots",
            tally.ballots
        );
        for _ in 0..3 {
            store.tally()?;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        let mut tokens = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let t = Instant::now();
            store.tally()?;
            times.push(t.elapsed());
            let t = Instant::now();
            store.change_token()?;
            tokens.push(t.elapsed());
        }
        let med = median(&mut times);
        let growth = med.as_secs_f64() / first.get_or_insert(med).as_secs_f64();
        let rows = rows_read(&mut conn, &store)?;
        println!(
            "  {} ballots: tally {} (token {}), {} index entries read",
            thousands(size as u64),
            ms(med),
            ms(median(&mut tokens)),
            thousands(rows)
        );
        table.row(vec![
            thousands(size as u64),
            ms(med),
            percentile(&times, 90.0).map_or("–".into(), ms),
            ms(median(&mut tokens)),
            thousands(rows),
            format!("{growth:.1}"),
        ]);
        last = (size, med);
    }
    let growth = last.1.as_secs_f64() / first.unwrap_or(last.1).as_secs_f64().max(1e-9);
    let span =
        sizes.last().copied().unwrap_or(1) as f64 / sizes.first().copied().unwrap_or(1) as f64;
    Ok(ItemReport {
        number: 6,
        title: "Tally cost as ballots grow",
        method: format!(
            "An open election with {CANDIDATES} candidates; ballots (spread evenly) and as many voters \
             who voted are inserted directly, and at each size `Store::tally()` — the count the live \
             broadcaster repeats after every change — is timed {SAMPLES} times (median, p90), with \
             `Store::change_token()` (what the broadcaster polls). \"Index entries read\" is the \
             change in the server's global `Handler_read_%` counters per tally (over 5 tallies)."
        ),
        tables: vec![table],
        verdict: Verdict {
            figure: format!(
                "{} at {} ballots ({growth:.1}× the {}-ballot time)",
                ms(last.1),
                thousands(last.0 as u64),
                thousands(sizes.first().copied().unwrap_or(0) as u64)
            ),
            ceiling: "–".into(),
            ratio: None,
            target: format!(
                "flat or slow growth (≤ {MAX_GROWTH}× over {span:.0}× the ballots)"
            ),
            met: Some(growth <= MAX_GROWTH),
        },
        notes: Vec::new(),
    })
}

/// Adds voters who voted and their ballots until the box holds `to` ballots.
fn grow(conn: &mut mysql::Conn, from: usize, to: usize) -> anyhow::Result<()> {
    let counts = has_running_counts(conn)?;
    let mut i = from;
    while i < to {
        let n = CHUNK.min(to - i);
        let mut tx = conn.start_transaction(TxOpts::default())?;
        let mut voters: Vec<Value> = Vec::with_capacity(n * 3);
        let mut ballots: Vec<Value> = Vec::with_capacity(n * 2);
        for k in i..i + n {
            voters.push(format!("T{k}").into());
            voters.push(format!("Voter {k}").into());
            voters.push("x".into());
            let mut hash = [0u8; 32];
            getrandom::fill(&mut hash).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            ballots.push(format!("C{}", k % CANDIDATES + 1).into());
            ballots.push(hash.to_vec().into());
        }
        tx.exec_drop(
            format!(
                "INSERT INTO voters (srn, first_name, last_name, credential_hash, voted) VALUES {}",
                vec!["(?, 'Bench', ?, ?, TRUE)"; n].join(", ")
            ),
            voters,
        )?;
        tx.exec_drop(
            format!(
                "INSERT INTO ballots (candidate_srn, receipt_hash) VALUES {}",
                vec!["(?, ?)"; n].join(", ")
            ),
            ballots,
        )?;
        if counts {
            for c in 0..CANDIDATES {
                let votes = (i..i + n).filter(|k| k % CANDIDATES == c).count() as i64;
                tx.exec_drop(
                    "INSERT INTO tally_counts (counter, slot, n) VALUES (?, 0, ?) \
                     ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
                    (format!("C:C{}", c + 1), votes),
                )?;
            }
            tx.exec_drop(
                "INSERT INTO tally_counts (counter, slot, n) VALUES ('roll', 0, ?) \
                 ON DUPLICATE KEY UPDATE n = n + VALUES(n)",
                (n as i64,),
            )?;
        }
        tx.commit()?;
        i += n;
    }
    Ok(())
}

/// Index and row reads per `Store::tally()`, from the server's global
/// `Handler_read_%` counters around a few tallies (anything else running on
/// the database server meanwhile is counted too).
fn rows_read(conn: &mut mysql::Conn, store: &voting_core::Store) -> anyhow::Result<u64> {
    const RUNS: u64 = 5;
    let reads = |conn: &mut mysql::Conn| -> anyhow::Result<u64> {
        let rows: Vec<(String, String)> = conn.query("SHOW GLOBAL STATUS LIKE 'Handler_read%'")?;
        Ok(rows.iter().filter_map(|(_, v)| v.parse::<u64>().ok()).sum())
    };
    let before = reads(conn)?;
    for _ in 0..RUNS {
        store.tally()?;
    }
    Ok(reads(conn)?.saturating_sub(before) / RUNS)
}
