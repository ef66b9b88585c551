//! A polling-station kiosk: asks each voter for their SRN and credential (not
//! echoed on a terminal), says whether they may vote, lists the candidates,
//! takes a choice and a confirmation, casts, shows the receipt, then forgets
//! the voter and waits for the next one. Ends at the end of input (Ctrl-D).
//!
//! Against the server `scripts/run.sh` starts:
//! ```sh
//! export VOTING_SERVER=localhost:7443 VOTING_CA=$PWD/certs/dev/ca.pem
//! cargo run -p voting-examples --example kiosk
//! ```
//! Input that is not a terminal is read a line per answer, credentials
//! included (for scripted tests; never pipe real credentials through a file).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use voting_examples::connect::{exit_code, ServerArgs};
use voting_examples::kiosk::{run_kiosk, KioskScreen};

/// Serve voters at a polling station, one after another.
#[derive(Parser)]
#[command(name = "kiosk")]
struct Args {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    exit_code(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    // Checked before the first voter: a kiosk that cannot trust the server
    // must not take anyone's credential.
    let endpoint = args.server.endpoint()?;
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let screen = KioskScreen {
        hide_credentials: terminal,
        clear_between_voters: terminal,
    };
    run_kiosk(
        &endpoint,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        screen,
    )?;
    Ok(())
}
