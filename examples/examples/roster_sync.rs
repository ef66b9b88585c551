//! Reconcile the server's electoral roll with a CSV file, as an admin: add the
//! voters missing from the roll (their credentials go to a new private file),
//! remove those no longer in the CSV (except voters who have voted: they stay,
//! and are reported), report voters whose details differ, print a summary.
//!
//! Against the server `scripts/run.sh` starts (it prints the admin password):
//! ```sh
//! export VOTING_SERVER=localhost:7443 VOTING_CA=$PWD/certs/dev/ca.pem VOTING_ADMIN=admin
//! cargo run -p voting-examples --example roster_sync -- roll.csv --dry-run
//! cargo run -p voting-examples --example roster_sync -- roll.csv --credentials-out new-credentials.csv
//! ```
//! The CSV is the one `voting admin voter import` reads: header
//! `srn,first_name,last_name,dob`. The password is asked on the terminal, or
//! read from `VOTING_PASSWORD`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use voting_examples::connect::{admin_password, exit_code, ServerArgs};
use voting_examples::roster_sync::{read_roll_csv, sync_roster, SyncMode};
use voting_net::ImportStage;

/// Make the server's roll match a CSV file.
#[derive(Parser)]
#[command(name = "roster_sync")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Admin to sign in as.
    #[arg(long, env = "VOTING_ADMIN")]
    user: String,
    /// The roll: a CSV with the header srn,first_name,last_name,dob.
    csv: PathBuf,
    /// Where to write the added voters' credentials (created with mode 0600;
    /// must not exist).
    #[arg(long, required_unless_present = "dry_run", conflicts_with = "dry_run")]
    credentials_out: Option<PathBuf>,
    /// Only report what would change.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    exit_code(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let source = args.csv.display().to_string();
    let file = File::open(&args.csv).with_context(|| format!("cannot open {source}"))?;
    // Read and check the whole file before touching the server.
    let wanted = read_roll_csv(file, &source)?;
    let mode = match args.credentials_out {
        Some(credentials_out) if !args.dry_run => SyncMode::Apply { credentials_out },
        _ => SyncMode::DryRun,
    };
    let endpoint = args.server.endpoint()?;
    let password = admin_password(&args.user)?;
    let mut client = endpoint.connect_admin(&args.user, &password)?;
    let show_progress = std::io::stderr().is_terminal();
    let mut progress = |stage: ImportStage, done: u64, total: u64| {
        if !show_progress {
            return;
        }
        match stage {
            ImportStage::Uploading => eprint!("\r\x1b[Kuploading: {done} of {total}"),
            ImportStage::Hashing => eprint!("\r\x1b[Kissuing credentials: {done} of {total}"),
        }
        if stage == ImportStage::Hashing && done == total {
            eprintln!();
        }
    };
    let mut out = std::io::stdout().lock();
    sync_roster(&mut client, &wanted, &mode, &mut progress, &mut out)?;
    out.flush()?;
    Ok(())
}
