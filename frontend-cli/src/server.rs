//! Commands that run next to the database: `db init`, `db add-admin`, `serve`.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use voting_core::{AdminName, ResultsPolicy, Store, StoreConfig};
use voting_net::{load_identity, Server, ServerConfig};

use crate::{output, secrets, Global};

/// Options of `voting serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// mysql://user:password@host:port/database
    #[arg(long, env = "VOTING_DATABASE_URL")]
    database_url: String,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "VOTING_BIND", default_value = "127.0.0.1:7443")]
    bind: String,
    /// Server certificate chain (PEM).
    #[arg(long, env = "VOTING_CERT")]
    cert: PathBuf,
    /// Server private key (PKCS#8 PEM).
    #[arg(long, env = "VOTING_KEY")]
    key: PathBuf,
    /// Who sees the tally before the election closes: everyone (`live`) or admins only.
    #[arg(long, env = "VOTING_RESULTS", default_value = "live")]
    results: ResultsPolicy,
    /// Most simultaneous connections.
    #[arg(long, env = "VOTING_MAX_CONNECTIONS", default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Check the configuration, certificates and database, print what would be
    /// served, and exit (0 when everything is usable).
    #[arg(long)]
    check_config: bool,
}

fn open_store(url: &str) -> anyhow::Result<Store> {
    Store::connect(url, StoreConfig::default()).context("cannot open the database")
}

/// Entry point of `voting db init`.
pub fn db_init(g: &Global, url: &str) -> anyhow::Result<()> {
    open_store(url)?.init_schema()?;
    if g.json {
        output::json(&serde_json::json!({ "schema": "ready" }));
    } else {
        println!("The database schema is ready.");
    }
    Ok(())
}

/// Entry point of `voting db add-admin`.
pub fn db_add_admin(g: &Global, name: &str, url: &str) -> anyhow::Result<()> {
    let name = AdminName::parse(name)?;
    let store = open_store(url)?;
    let password = secrets::new_admin_password(name.as_str())?;
    store.create_admin(&name, &password)?;
    if g.json {
        output::json(&serde_json::json!({ "admin": name }));
    } else {
        println!("Admin {name} created.");
    }
    Ok(())
}

/// Entry point of `voting serve`: runs until killed. Votes are transactions, so
/// stopping the process at any moment loses nothing that was acknowledged.
pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let identity = load_identity(&args.cert, &args.key)?;
    let store = Arc::new(open_store(&args.database_url)?);
    let status = store
        .election_status()
        .context("the database has no election schema yet: run `voting db init` first")?;
    let config = ServerConfig {
        results: args.results,
        max_connections: args.max_connections,
        ..ServerConfig::default()
    };
    if args.check_config {
        let bind: Vec<String> = args
            .bind
            .to_socket_addrs()
            .with_context(|| format!("--bind {}: not an address", args.bind))?
            .map(|a| a.to_string())
            .collect();
        let expires = identity.not_after();
        output::say("The configuration is usable. `voting serve` would:");
        output::say(&format!(
            "- listen on {} with TLS 1.2+ (certificate {}, valid until {expires})",
            bind.join(", "),
            args.cert.display()
        ));
        output::say(&format!(
            "- serve the election in {} ({} candidates, {} voters, {} voted) from {}",
            status.state,
            status.candidates,
            status.voters,
            status.voted,
            redact_url(&args.database_url)
        ));
        output::say(&format!(
            "- show results {}; accept at most {} connections; close idle connections after {} s ({} min when signed in); run {} credential checks at once",
            config.results.as_str(),
            config.max_connections,
            config.idle_timeout_anonymous.as_secs(),
            config.idle_timeout_signed_in.as_secs() / 60,
            store.hash_limiter().permits(),
        ));
        return Ok(());
    }
    let server = Server::bind(args.bind.as_str(), identity, store, config)?;
    Ok(server.run()?)
}

/// The URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}
