//! How the client examples find and trust the server, and sign admins in: the
//! same options and environment variables as the `voting` command line.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use voting_core::Secret;
use voting_net::{Client, ClientConfig, NetError};

/// Where the server is and which CA vouches for it (`--server`, `--ca`).
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Server to talk to, HOST:PORT.
    #[arg(long, env = "VOTING_SERVER", default_value = "localhost:7443")]
    pub server: String,
    /// CA certificate (PEM) the server's certificate must chain to
    /// (`scripts/run.sh` prints it: `certs/dev/ca.pem`).
    #[arg(long, env = "VOTING_CA")]
    pub ca: Option<PathBuf>,
}

impl ServerArgs {
    /// The server to dial and the client configuration that trusts only `--ca`.
    ///
    /// Read once, up front: a CA file that cannot be read is a setup mistake,
    /// not something to retry for every voter at a kiosk.
    pub fn endpoint(&self) -> anyhow::Result<Endpoint> {
        let Some(ca) = &self.ca else {
            bail!("no CA certificate: pass --ca PEM or set VOTING_CA (scripts/run.sh prints it)");
        };
        let config = ClientConfig::from_ca_file(ca)?;
        Ok(Endpoint {
            server: self.server.clone(),
            config,
        })
    }
}

/// A server and how to trust it: everything needed to open connections.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`; the host must be a name the certificate carries.
    pub server: String,
    /// Trusts exactly the election's CA.
    pub config: ClientConfig,
}

impl Endpoint {
    /// A new connection (TLS verified, `hello` done), anonymous.
    pub fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.server, &self.config)
            .with_context(|| format!("cannot talk to the voting server at {}", self.server))
    }

    /// A new connection signed in as the admin `name`.
    pub fn connect_admin(&self, name: &str, password: &Secret) -> anyhow::Result<Client> {
        let mut client = self.connect()?;
        client
            .login_admin(name, password)
            .with_context(|| format!("cannot sign in as the admin '{name}'"))?;
        Ok(client)
    }
}

/// An admin's password: `VOTING_PASSWORD` when set (for scripts), otherwise
/// asked on the terminal without echo. Never a command-line argument, which
/// other users of the machine could read in the process list.
pub fn admin_password(name: &str) -> anyhow::Result<Secret> {
    if let Ok(value) = std::env::var("VOTING_PASSWORD") {
        return Ok(Secret::new(value));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password of '{name}' on: set VOTING_PASSWORD");
    }
    let typed = rpassword::prompt_password(format!("Password for {name}: "))
        .context("cannot read the password from the terminal")?;
    Ok(Secret::new(typed.trim_end_matches(['\r', '\n'])))
}

/// Turns an example's outcome into its exit code: the one place an error
/// becomes a line on stderr. The line starts with the stable code of the first
/// protocol error in the chain (`bad_credentials`, `connection_failed`, …),
/// which scripts may match; the rest is for people.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    let Err(e) = result else {
        return std::process::ExitCode::SUCCESS;
    };
    // `live_results | head -5`: the reader has what it wanted; not an error.
    let broken_pipe = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return std::process::ExitCode::SUCCESS;
    }
    match e.chain().find_map(|c| c.downcast_ref::<NetError>()) {
        Some(net) => eprintln!("error: {}: {e:#}", net.code()),
        None => eprintln!("error: {e:#}"),
    }
    std::process::ExitCode::FAILURE
}
