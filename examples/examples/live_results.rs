//! Print the tally each time it changes — one line per candidate with votes and
//! share, then the turnout — until the election closes, or after `--updates N`
//! changes.
//!
//! Against the server `scripts/run.sh` starts:
//! ```sh
//! export VOTING_SERVER=localhost:7443 VOTING_CA=$PWD/certs/dev/ca.pem
//! cargo run -p voting-examples --example live_results
//! cargo run -p voting-examples --example live_results -- --updates 3
//! # a server started with `scripts/run.sh --results after-close` shows the
//! # count before the close only to admins:
//! cargo run -p voting-examples --example live_results -- --user admin
//! ```
//! Anonymous unless the server publishes results only after the close and
//! `--user` (or `VOTING_ADMIN`) names an admin; the password is then asked on
//! the terminal, or read from `VOTING_PASSWORD`.

use std::process::ExitCode;

use clap::Parser;
use voting_examples::connect::{admin_password, exit_code, ServerArgs};
use voting_examples::live_results::{connect_viewer, watch_results};

/// Watch the results live.
#[derive(Parser)]
#[command(name = "live_results")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Admin to sign in as, when the results are published only after the close.
    #[arg(long, env = "VOTING_ADMIN")]
    user: Option<String>,
    /// Stop after this many changes (default: when the election closes).
    #[arg(long, value_name = "N")]
    updates: Option<u64>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    exit_code(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let endpoint = args.server.endpoint()?;
    let mut client = connect_viewer(&endpoint, args.user.as_deref(), admin_password)?;
    watch_results(&mut client, args.updates, &mut std::io::stdout().lock())?;
    Ok(())
}
