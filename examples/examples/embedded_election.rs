//! Embed the voting server in your own program and run a small election in it:
//! a server on a free loopback port, three voters voting over TLS, a client
//! watching the live tally, an anonymous receipt check, the final count.
//!
//! ```sh
//! scripts/run.sh   # once: MariaDB, its user `voting`, dev certificates (then Ctrl-C)
//! MYSQL_PWD=voting-dev-password mariadb -uvoting -h127.0.0.1 \
//!     -e 'DROP DATABASE IF EXISTS voting_example; CREATE DATABASE voting_example'
//! VOTING_DATABASE_URL=mysql://voting:voting-dev-password@127.0.0.1:3306/voting_example \
//!     cargo run -p voting-examples --example embedded_election
//! ```
//!
//! Settings, from the environment:
//! - `VOTING_DATABASE_URL` (required): an **empty** database. The example
//!   refuses any database that has an election, voters or admins, and leaves a
//!   closed election behind (recreate the database to run it again).
//! - `VOTING_CERT`, `VOTING_KEY`, `VOTING_CA`: the server's certificate and key
//!   and the CA clients trust; by default `certs/dev/server.pem`,
//!   `certs/dev/server.key` and `certs/dev/ca.pem` (run from the workspace root;
//!   `certs/make-dev-certs.sh` makes them).
//! - `RUST_LOG=info` shows the server's own log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use voting_core::{Store, StoreConfig};
use voting_examples::{run_demo_election, DatabaseInUse};
use voting_net::{load_identity, ClientConfig};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // The one place an error becomes a message and an exit code.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let url = std::env::var("VOTING_DATABASE_URL").map_err(|_| {
        anyhow!(
            "VOTING_DATABASE_URL is not set: give it an empty database \
             (mysql://USER:PW@HOST:PORT/DB); scripts/run.sh, through \
             scripts/lib/provision.sh, sets up a MariaDB server and a user to make \
             one (see the top of examples/examples/embedded_election.rs)"
        )
    })?;
    let cert = setting("VOTING_CERT", "certs/dev/server.pem");
    let key = setting("VOTING_KEY", "certs/dev/server.key");
    let ca = setting("VOTING_CA", "certs/dev/ca.pem");
    let tls_help = "cannot use the TLS files (set VOTING_CERT, VOTING_KEY and VOTING_CA, \
                    or make dev ones with certs/make-dev-certs.sh and run from the \
                    workspace root)";
    let identity = load_identity(&cert, &key).context(tls_help)?;
    let clients = ClientConfig::from_ca_file(&ca).context(tls_help)?;
    // Never echo the URL: it holds the database password.
    let store = Store::connect(&url, StoreConfig::default())
        .context("cannot connect to the database in VOTING_DATABASE_URL")?;

    let outcome = run_demo_election(Arc::new(store), identity, &clients, &mut std::io::stdout())
        .map_err(|e| {
            if e.is::<DatabaseInUse>() {
                e.context("point VOTING_DATABASE_URL at an empty database")
            } else {
                e
            }
        })?;
    println!(
        "\n{} ballots counted; the watcher saw {} live tallies",
        outcome.final_tally.ballots,
        outcome.pushed_tallies.len()
    );
    Ok(())
}

/// A file path from the environment, or the dev default.
fn setting(name: &str, default: &str) -> PathBuf {
    std::env::var_os(name).map_or_else(|| PathBuf::from(default), PathBuf::from)
}
