//! `voting-voter`: the voter's desktop app (sign in, vote, keep the receipt,
//! check a receipt, live results). A thin window over `frontend_slint::voter`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use frontend_slint::voter::{self, VoterOptions};
use frontend_slint::VoterWindow;
use slint::ComponentHandle;
use voting_core::Secret;

/// Vote in an election, check a receipt, watch the results.
#[derive(Parser)]
#[command(
    name = "voting-voter",
    version,
    about,
    after_help = "With --server and --ca (or VOTING_SERVER and VOTING_CA) the app connects at once.\n\
For scripts and screenshots: with --srn and VOTING_CREDENTIAL set, it also signs in; \
VOTING_CANDIDATE=SRN then chooses that candidate and opens the confirmation (it never \
casts a vote by itself)."
)]
struct Args {
    /// Server to talk to, HOST:PORT (default localhost:7443).
    #[arg(long, env = "VOTING_SERVER")]
    server: Option<String>,
    /// CA certificate (PEM) the server's certificate must chain to.
    #[arg(long, env = "VOTING_CA")]
    ca: Option<PathBuf>,
    /// Your SRN, to fill in.
    #[arg(long, env = "VOTING_SRN")]
    srn: Option<String>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voting-voter: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let ui = VoterWindow::new()?;
    voter::init(
        &ui,
        VoterOptions {
            server: args.server,
            ca: args.ca,
            srn: args.srn,
            credential: std::env::var("VOTING_CREDENTIAL").ok().map(Secret::new),
            candidate: std::env::var("VOTING_CANDIDATE").ok(),
        },
    )?;
    ui.run()?;
    Ok(())
}
