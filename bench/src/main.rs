//! `voting-bench`: the benchmark program. Measures the six figures of the
//! benchmark issue against a database server of the user's, each against a
//! ceiling measured in the same run where there is one, prints a table per
//! item and writes the results into `BENCHMARKS.md`.
//!
//! ```sh
//! cargo build --release -p voting-bench -p frontend-cli
//! target/release/voting-bench --database-url mysql://root@127.0.0.1:3306/
//! ```
//! It creates (and drops) its own databases `voting_bench_<hex>`.

mod cast;
mod conns;
mod cpu;
mod env;
mod fixture;
mod import;
mod live;
mod report;
mod sessions;
mod stats;
mod tally;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use voting_net::ServerConfig;

use crate::env::{loadavg, redact, Machine};
use crate::fixture::Election;
use crate::report::{ItemReport, Report};

/// Measures cast throughput, voter sessions, live tally latency, connection
/// memory, import time and tally cost, and writes BENCHMARKS.md.
#[derive(Parser, Debug)]
#[command(name = "voting-bench", version)]
struct Args {
    /// The database server, without a database: mysql://user:password@host:port/
    /// (the user must be allowed to create and drop databases `voting_bench_%`).
    /// Default: $VOTING_BENCH_DATABASE_URL, then $VOTING_TEST_DATABASE_URL.
    #[arg(long, env = "VOTING_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// A smoke run with small sizes (seconds, not minutes; figures not representative).
    #[arg(long)]
    quick: bool,
    /// Run only this item (1–6).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=6))]
    only: Option<u8>,
    /// Where to write the report. A full run writes ./BENCHMARKS.md by default;
    /// runs with --quick or --only write only when this is given.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The `voting` binary item 4 starts (default: next to this binary).
    #[arg(long)]
    voting_bin: Option<PathBuf>,
    /// Pace the voters of item 3 at this many votes per second in total
    /// (default: as fast as they can).
    #[arg(long)]
    live_rate: Option<f64>,
}

/// Sizes of a run.
struct Plan {
    /// Voters signed in for items 1 and 3 (each casts once per round).
    voters: usize,
    /// Concurrencies of item 1.
    levels: Vec<usize>,
    /// Rounds per concurrency in item 1.
    rounds: usize,
    /// Sessions of item 2.
    sessions: usize,
    /// Parts item 2 is measured in (a ceiling measurement before each and after the last).
    segments: usize,
    /// Seconds of each scrypt ceiling measurement.
    ceiling_secs: f64,
    /// Subscribers of item 3.
    subscribers: usize,
    /// Idle connections of item 4.
    idle: usize,
    /// Voters imported in item 5.
    import: usize,
    /// Ballot-box sizes of item 6.
    tally_sizes: Vec<usize>,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                voters: 300,
                levels: vec![1, 4, 16, 64],
                rounds: 1,
                sessions: 300,
                segments: 2,
                ceiling_secs: 0.3,
                subscribers: 50,
                idle: 200,
                import: 1_000,
                tally_sizes: vec![1_000, 10_000],
            }
        } else {
            Plan {
                voters: 3_000,
                levels: vec![1, 4, 16, 64],
                rounds: 3,
                sessions: 3_000,
                segments: 6,
                ceiling_secs: 1.0,
                subscribers: 500,
                idle: 2_000,
                import: 10_000,
                tally_sizes: vec![1_000, 10_000, 100_000],
            }
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match try_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voting-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn try_main() -> anyhow::Result<()> {
    let args = Args::parse();
    let url = args
        .database_url
        .clone()
        .or_else(|| std::env::var("VOTING_TEST_DATABASE_URL").ok())
        .context(
            "no database server: pass --database-url mysql://user:password@host:port/ \
             (or set VOTING_BENCH_DATABASE_URL)",
        )?;
    let plan = Plan::new(args.quick);
    let started = Instant::now();
    let machine = Machine::probe(&url)?;
    println!(
        "voting-bench: {} cores ({}), MariaDB {}, commit {}{}, load average {}; database server {}",
        machine.cores,
        machine.cpu_model,
        machine.mariadb,
        machine.commit,
        if machine.dirty { " (dirty)" } else { "" },
        machine.load_start,
        redact(&url)
    );
    let wanted = |n: u8| args.only.is_none_or(|only| only == n);
    let mut done = Done::default();
    let mut scrypt_rate = None;

    if wanted(1) || wanted(2) || wanted(3) {
        let config = ServerConfig {
            max_connections: plan.voters + plan.subscribers + 256,
            ..ServerConfig::default()
        };
        println!("\nseeding {} voters …", plan.voters);
        let election = Election::start(&url, plan.voters, true, config)?;
        done.watch = cpu::Contention::start();
        // Sessions first: the signed-in connections items 1 and 3 keep open
        // are no part of item 2's scenario.
        if wanted(2) {
            println!("\n2. full voter sessions …");
            let item = sessions::run(&election, plan.sessions, plan.segments, plan.ceiling_secs)?;
            scrypt_rate = ceiling_of(&item);
            done.add(item);
        }
        if wanted(1) || wanted(3) {
            println!("\nsigning {} voters in …", plan.voters);
            let pool = election.sign_in_first(plan.voters, 8)?;
            // The setup's CPU is no part of the items.
            done.watch = cpu::Contention::start();
            if wanted(1) {
                println!("\n1. cast throughput …");
                done.add(cast::run(&election, &pool, &plan.levels, plan.rounds)?);
            }
            if wanted(3) {
                println!("\n3. live tally latency …");
                let item = live::run(&election, &pool, plan.subscribers, args.live_rate)?;
                done.add(item);
            }
        }
        println!(
            "  (server had {} connections open)",
            election.active_connections()
        );
    }
    if wanted(4) {
        println!("\n4. idle connections …");
        let bin = args
            .voting_bin
            .clone()
            .unwrap_or_else(conns::default_voting_bin);
        done.add(conns::run(&url, &bin, plan.idle)?);
    }
    if wanted(5) {
        println!("\n5. import …");
        let rate = match scrypt_rate {
            Some(r) => r,
            None => sessions::scrypt_rate(machine.cores, plan.ceiling_secs)?,
        };
        done.add(import::run(&url, plan.import, rate)?);
    }
    if wanted(6) {
        println!("\n6. tally cost …");
        done.add(tally::run(&url, &plan.tally_sizes)?);
    }

    done.items.sort_by_key(|i| i.number);
    let report = Report {
        machine,
        load_end: loadavg(),
        command: command_line(&args),
        quick: args.quick,
        elapsed_secs: started.elapsed().as_secs_f64(),
        items: done.items,
    };
    println!(
        "\n== summary (load average at start {}, at end {}) ==\n{}",
        report.machine.load_start,
        report.load_end,
        report.summary().to_text()
    );
    let out = match (&args.out, args.quick || args.only.is_some()) {
        (Some(path), _) => Some(path.clone()),
        (None, false) => Some(PathBuf::from("BENCHMARKS.md")),
        (None, true) => None,
    };
    if let Some(path) = out {
        report.write(&path)?;
        println!("written to {}", path.display());
    }
    Ok(())
}

/// The items measured so far, and who used the CPU since the last one ended.
struct Done {
    items: Vec<ItemReport>,
    watch: cpu::Contention,
}

impl Default for Done {
    fn default() -> Self {
        Done {
            items: Vec::new(),
            watch: cpu::Contention::start(),
        }
    }
}

impl Done {
    /// Records an item (with a note on the CPU shares while it ran) and prints it.
    fn add(&mut self, mut item: ItemReport) {
        item.notes.push(self.watch.note());
        print!("{}", item.to_text());
        self.items.push(item);
        self.watch = cpu::Contention::start();
    }
}

/// The scrypt rate item 2 measured (its ceiling), for item 5.
fn ceiling_of(item: &ItemReport) -> Option<f64> {
    let figure = item.verdict.ceiling.split_whitespace().next()?;
    figure.replace(',', "").parse().ok()
}

/// How this run was asked for, without the database password.
fn command_line(args: &Args) -> String {
    let mut s = String::from("voting-bench");
    if args.database_url.is_some() {
        s += " --database-url …";
    }
    if args.quick {
        s += " --quick";
    }
    if let Some(n) = args.only {
        s += &format!(" --only {n}");
    }
    if let Some(r) = args.live_rate {
        s += &format!(" --live-rate {r}");
    }
    s
}
