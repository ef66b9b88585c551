//! `voting`: run a server, administer an election, vote — a thin layer over
//! `voting-core` and `voting-net`. Every rule lives in those libraries; this
//! file parses arguments, dispatches to one function per command, and turns any
//! error into one line on stderr and a non-zero exit code.

mod admin;
mod integrity;
mod output;
mod secrets;
mod server;
mod voter;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use voting_core::{ErrorCode, VotingError};
use voting_net::{Client, ClientConfig, NetError};

/// Run or take part in an election: `voting serve`, `voting admin …`, `voting vote`.
#[derive(Parser)]
#[command(name = "voting", version, about, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options every client command understands (before or after the subcommand).
#[derive(Args, Clone)]
pub struct Global {
    /// Server to talk to, HOST:PORT.
    #[arg(
        long,
        global = true,
        env = "VOTING_SERVER",
        default_value = "localhost:7443"
    )]
    server: String,
    /// CA certificate (PEM) the server's certificate must chain to.
    #[arg(long, global = true, env = "VOTING_CA")]
    ca: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout (`--watch`: one per line).
    #[arg(long, global = true)]
    json: bool,
}

impl Global {
    /// Connects to the server, verifying it against `--ca`.
    pub fn connect(&self) -> anyhow::Result<Client> {
        let ca = self.ca.as_ref().ok_or_else(|| {
            usage("no CA certificate: pass --ca PEM or set VOTING_CA (scripts/run.sh prints it)")
        })?;
        let config = ClientConfig::from_ca_file(ca)?;
        Ok(Client::connect(&self.server, &config)?)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Database set-up (run on a machine that can reach the database).
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Serve the election over TLS.
    Serve(server::ServeArgs),
    /// Administer the election (signs in as --user; password prompted or VOTING_PASSWORD).
    Admin(admin::AdminArgs),
    /// Check whether you may vote (credential prompted or VOTING_CREDENTIAL).
    Check {
        /// Your SRN.
        #[arg(long)]
        srn: String,
    },
    /// Cast your vote: lists the candidates, asks for your choice and a confirmation.
    Vote(voter::VoteArgs),
    /// Check a receipt: is that ballot counted, for whom, and is the ballot chain intact.
    Verify {
        /// The receipt code you were given (dashes and case don't matter).
        receipt: String,
        /// The ballot seal you wrote down with it (`#SEQ:HEX`): checked too.
        #[arg(long)]
        seal: Option<String>,
    },
    /// Recount a published election (`voting admin export`) without a server:
    /// recomputes the tally and both hash chains and reports any mismatch.
    Recount {
        /// publication.json, or the directory the export wrote.
        file: PathBuf,
    },
    /// Show the tally (when the server's results policy allows).
    Results {
        /// Keep showing the tally as it changes.
        #[arg(long)]
        watch: bool,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Create or upgrade the schema (safe to run again).
    Init {
        /// mysql://user:password@host:port/database
        #[arg(long, env = "VOTING_DATABASE_URL")]
        database_url: String,
    },
    /// Create an administrator (password prompted, or VOTING_PASSWORD).
    AddAdmin {
        /// Sign-in name (letters, digits, '.', '-', '_').
        name: String,
        /// mysql://user:password@host:port/database
        #[arg(long, env = "VOTING_DATABASE_URL")]
        database_url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_log = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_log)).init();
    let json = cli.global.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = error_code(&e);
            let message = format!("{e:#}");
            if json {
                output::json(&serde_json::json!({ "error": { "code": code, "message": message } }));
            }
            eprintln!("voting: {code}: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::Db {
            command: DbCommand::Init { database_url },
        } => server::db_init(g, &database_url),
        Command::Db {
            command: DbCommand::AddAdmin { name, database_url },
        } => server::db_add_admin(g, &name, &database_url),
        Command::Serve(args) => server::serve(&args),
        Command::Admin(args) => admin::run(g, args),
        Command::Check { srn } => voter::check(g, &srn),
        Command::Vote(args) => voter::vote(g, &args),
        Command::Verify { receipt, seal } => voter::verify(g, &receipt, seal.as_deref()),
        Command::Recount { file } => integrity::recount(g.json, &file),
        Command::Results { watch } => {
            let mut client = g.connect()?;
            output::results(g.json, &mut client, watch)
        }
    }
}

/// A mistake in how the command was used (missing option, unreadable file, …).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(String);

/// Builds a [`Usage`] error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// The stable code of whatever went wrong, from the first typed error in the chain.
fn error_code(e: &anyhow::Error) -> ErrorCode {
    e.chain()
        .find_map(|cause| {
            if let Some(n) = cause.downcast_ref::<NetError>() {
                Some(n.code())
            } else if let Some(v) = cause.downcast_ref::<VotingError>() {
                Some(v.code())
            } else if cause.is::<Usage>() || cause.is::<csv::Error>() {
                Some(ErrorCode::InvalidInput)
            } else {
                None
            }
        })
        .unwrap_or(ErrorCode::Internal)
}
