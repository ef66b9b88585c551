//! How an integrator embeds `voting-core` and `voting-net` in a program of its
//! own. Each example's logic lives here, so that a test runs exactly what the
//! example runs; the programs in `examples/examples/` only read their settings:
//!
//! - [`run_demo_election`] (`embedded_election`): a server inside your program.
//! - [`roster_sync`] (`roster_sync`): reconcile the roll with a CSV, as an admin.
//! - [`live_results`] (`live_results`): print the tally each time it changes.
//! - [`kiosk`] (`kiosk`): a polling-station loop, one voter after another.
//!
//! [`connect`] holds what the client examples share: `--server`/`--ca` (and
//! `VOTING_SERVER`/`VOTING_CA`), the admin password, the exit code.
#![warn(missing_docs)]

pub mod connect;
pub mod kiosk;
pub mod live_results;
pub mod roster_sync;

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use voting_core::{
    AdminName, AdminSession, Candidate, CastReceipt, ElectionState, NewVoter, ReceiptCheck,
    ResultsPolicy, Secret, Srn, Store, Tally,
};
use voting_net::ServerIdentity;
use voting_net::{Client, ClientConfig, Event, Server, ServerConfig};

/// The demo's ballot: SRN, name, affiliation.
const CANDIDATES: [(&str, &str, Option<&str>); 2] = [
    ("C1", "Ada Lovelace", Some("Analytical Engine Society")),
    ("C2", "Grace Hopper", None),
];

/// The demo's roll (SRN, first name, last name) and whom each voter picks.
const VOTERS: [(&str, &str, &str, &str); 3] = [
    ("S1", "Alan", "Turing", "C1"),
    ("S2", "Edsger", "Dijkstra", "C2"),
    ("S3", "Barbara", "Liskov", "C1"),
];

/// One voter's visit to the polls: SRN, credential, the candidate they pick.
type Visit = (&'static str, Secret, &'static str);

/// How long the watcher waits for the next pushed tally before giving up.
const WATCH_PATIENCE: Duration = Duration::from_secs(10);

/// What someone running the demo observes.
#[derive(Debug)]
pub struct DemoOutcome {
    /// The candidate each ballot was cast for, in the order the voters voted.
    pub votes_cast: Vec<Srn>,
    /// Every tally pushed to the subscribed watcher while the votes came in.
    pub pushed_tallies: Vec<Tally>,
    /// The first voter's receipt, as an anonymous connection saw it checked.
    pub receipt_check: ReceiptCheck,
    /// The tally after the close, as anyone may read it then.
    pub final_tally: Tally,
}

/// The database is not empty: the demo refuses to change someone's election.
#[derive(Debug)]
pub struct DatabaseInUse;

impl std::error::Error for DatabaseInUse {}
impl fmt::Display for DatabaseInUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the database already holds an election, voters or admins")
    }
}

/// Entry point of the embedding example: runs a whole election in this process
/// (a server on a free loopback port serving `store` with `identity`, voters and
/// a tally watcher connecting with [`Client`]s that trust `ca`) and writes what
/// happens to `out`. The server stops when this returns, error or not.
///
/// `store` must reach an empty database (the schema is applied here); anything
/// else fails with [`DatabaseInUse`] before a row is written.
pub fn run_demo_election(
    store: Arc<Store>,
    identity: ServerIdentity,
    ca: &ClientConfig,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<DemoOutcome> {
    let out = Console(Mutex::new(out));
    // A trusted session skips the password check. That is fine here: this
    // program holds the database credentials, so it can already do anything an
    // admin can. Code acting for someone on the network must never make one —
    // people sign in (`Store::authenticate_admin`, or the server's login).
    let admin = AdminSession::trusted(AdminName::parse("embedded-demo")?);
    store.init_schema()?;
    let status = store.election_status()?;
    // Every admin action, creating an admin too, leaves an audit line: a
    // database made for a real election is "in use" before it has candidates.
    let audited = !store.audit_log(&admin, 0, 1)?.is_empty();
    if audited || status.state != ElectionState::Setup || status.candidates + status.voters > 0 {
        return Err(DatabaseInUse.into());
    }

    // An anonymous watcher may see the count only while results are live.
    let config = ServerConfig {
        results: ResultsPolicy::Live,
        ..ServerConfig::default()
    };
    let server = Server::bind("127.0.0.1:0", identity, Arc::clone(&store), config)?.spawn()?;
    // The certificate names `localhost`; the client checks the name it dials.
    let addr = format!("localhost:{}", server.local_addr().port());
    out.say(format!("server listening on {addr}"));

    for (srn, name, affiliation) in CANDIDATES {
        store.add_candidate(&admin, &Candidate::parse(srn, name, affiliation)?)?;
    }
    let mut visits: Vec<Visit> = Vec::new();
    for (srn, first, last, choice) in VOTERS {
        let credential = store.add_voter(&admin, &NewVoter::parse(srn, first, last, None)?)?;
        visits.push((srn, credential, choice));
    }
    store.open_election(&admin)?;
    out.say("election open: 2 candidates, 3 voters");

    // Subscribed before the first vote, so the watcher misses no change.
    let mut watcher = Client::connect(&addr, ca)?;
    watcher.subscribe()?;
    let (receipts, pushed_tallies) = std::thread::scope(|scope| {
        let watching = scope.spawn(|| watch(watcher, VOTERS.len() as u64, &out));
        let receipts: anyhow::Result<Vec<_>> =
            visits.iter().map(|v| vote(&addr, ca, v, &out)).collect();
        let pushed = watching.join().map_err(|_| anyhow!("watcher panicked"))?;
        anyhow::Ok((receipts?, pushed?))
    })?;

    // Checking a receipt needs no sign-in: the receipt itself is the proof.
    let mut public = Client::connect(&addr, ca)?;
    let first = receipts.first().context("no ballot was cast")?;
    let receipt_check = public.verify(first.receipt.expose())?;
    let (ballot, whom) = (receipt_check.ballot_id, &receipt_check.candidate);
    out.say(format!("receipt verified: ballot {ballot} is for {whom}"));

    store.close_election(&admin)?;
    let final_tally = public.tally()?;
    print_table(&final_tally, &out);
    server.shutdown();
    Ok(DemoOutcome {
        votes_cast: receipts.into_iter().map(|r| r.candidate).collect(),
        pushed_tallies,
        receipt_check,
        final_tally,
    })
}

/// One voter's visit: connect, sign in, read the ballot, vote.
fn vote(addr: &str, ca: &ClientConfig, v: &Visit, out: &Console) -> anyhow::Result<CastReceipt> {
    let (srn, credential, choice) = v;
    let mut client = Client::connect(addr, ca)?;
    client.login_voter(srn, credential)?;
    let ballot = client.candidates()?;
    let candidate = (ballot.iter().find(|c| c.srn.as_str() == *choice))
        .with_context(|| format!("{choice} is not on the ballot"))?;
    let receipt = client.cast(&candidate.srn)?;
    let (name, receipt_text) = (&candidate.name, receipt.receipt.expose());
    out.say(format!("{srn} voted for {name} (receipt {receipt_text})"));
    Ok(receipt)
}

/// Prints every pushed tally until one counts `ballots` ballots. The server
/// coalesces changes that come close together, so there may be fewer pushes
/// than votes; the last one always has them all.
fn watch(mut watcher: Client, ballots: u64, out: &Console) -> anyhow::Result<Vec<Tally>> {
    let mut seen: Vec<Tally> = Vec::new();
    while seen.last().is_none_or(|t| t.ballots < ballots) {
        match watcher.next_event(Some(WATCH_PATIENCE))? {
            Some(Event::Tally { tally }) => {
                let mut line = format!("  [watcher] ballots: {}", tally.ballots);
                for c in &tally.candidates {
                    line += &format!(" | {} {}", c.srn, c.votes);
                }
                out.say(line);
                seen.push(tally);
            }
            Some(_) => {}
            None => bail!("no tally with {ballots} ballots pushed within {WATCH_PATIENCE:?}"),
        }
    }
    Ok(seen)
}

fn print_table(tally: &Tally, out: &Console) {
    let width = (tally.candidates.iter().map(|c| c.name.chars().count()))
        .fold("Candidate".len(), usize::max);
    let row = |srn: &str, name: &str, votes: &dyn fmt::Display| {
        format!("{srn:<4} {name:<width$} {votes:>5}")
    };
    out.say(format!("\n{}", row("SRN", "Candidate", &"Votes")));
    for c in &tally.candidates {
        out.say(row(c.srn.as_str(), &c.name, &c.votes));
    }
    out.say(row("", "ballots", &tally.ballots));
}

/// Output shared by the voters (this thread) and the watcher (its own thread).
struct Console<'a>(Mutex<&'a mut (dyn Write + Send)>);

impl Console<'_> {
    /// Writes one line, ignoring errors: a closed pipe must not abandon an election.
    fn say(&self, line: impl fmt::Display) {
        let mut out = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = writeln!(out, "{line}");
    }
}
