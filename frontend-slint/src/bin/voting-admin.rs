//! `voting-admin`: the election officer's desktop app (sign in, roll,
//! candidates, open/close, live results, audit log). A thin window over
//! `frontend_slint::admin`; see `--help` for the options.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use frontend_slint::admin::{self, AdminOptions};
use frontend_slint::{config, AdminWindow};
use slint::ComponentHandle;
use voting_core::Secret;

/// Administer an election: the roll, the candidates, opening and closing, live results.
#[derive(Parser)]
#[command(
    name = "voting-admin",
    version,
    about,
    after_help = "Server and CA are remembered in $XDG_CONFIG_HOME/voting/admin.json \
(or ~/.config/voting/admin.json); the password never is.\n\
For scripts and screenshots: with VOTING_PASSWORD set (and a user), the app signs in \
at once; VOTING_ADMIN_TAB=voters|candidates|election|results|audit picks the first tab."
)]
struct Args {
    /// Server to talk to, HOST:PORT (default: the last one used, else localhost:7443).
    #[arg(long, env = "VOTING_SERVER")]
    server: Option<String>,
    /// CA certificate (PEM) the server's certificate must chain to.
    #[arg(long, env = "VOTING_CA")]
    ca: Option<PathBuf>,
    /// Admin name to fill in.
    #[arg(long, env = "VOTING_ADMIN")]
    user: Option<String>,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voting-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let ui = AdminWindow::new()?;
    admin::init(
        &ui,
        AdminOptions {
            server: args.server,
            ca: args.ca,
            user: args.user,
            password: std::env::var("VOTING_PASSWORD").ok().map(Secret::new),
            tab: std::env::var("VOTING_ADMIN_TAB").ok(),
            remember: config::default_path(),
        },
    )?;
    ui.run()?;
    Ok(())
}
