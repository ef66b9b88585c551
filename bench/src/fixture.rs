//! A running election to measure against: its own database with the schema,
//! candidates and a roll whose credentials the benchmark knows, and a real
//! server on `127.0.0.1:<free port>` in this process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use mysql::prelude::Queryable;
use voting_core::{AdminName, AdminSession, Candidate, NewVoter, Secret, Srn, Store, StoreConfig};
use voting_net::{Client, ClientConfig, Server, ServerConfig, ServerHandle};
use voting_testkit::TestCerts;

use crate::env::BenchDb;

/// Candidates on every benchmark ballot.
pub const CANDIDATES: usize = 4;

/// The admin the benchmark acts as when it seeds through the store.
pub fn bench_admin() -> anyhow::Result<AdminSession> {
    Ok(AdminSession::trusted(AdminName::parse("bench")?))
}

/// An election with its database, certificates and server.
pub struct Election {
    /// The server (dropped first: it stops before its database goes).
    server: ServerHandle,
    /// The store the server uses.
    pub store: Arc<Store>,
    /// What clients trust.
    pub client_config: ClientConfig,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// The roll: SRN and credential of every voter, in order.
    pub voters: Vec<(String, Secret)>,
    /// The candidates' SRNs.
    pub candidates: Vec<Srn>,
    /// The certificates: their temp dir must live as long as the election.
    certs: TestCerts,
    /// The database, dropped last.
    pub db: BenchDb,
}

/// What [`seed`] put in place.
pub struct Seeded {
    /// A store on the database.
    pub store: Arc<Store>,
    /// The roll: SRN and credential of every voter, in order.
    pub voters: Vec<(String, Secret)>,
    /// The candidates' SRNs.
    pub candidates: Vec<Srn>,
}

/// A database with the schema, [`CANDIDATES`] candidates and `voters` voters
/// (imported through the store, so credentials are real scrypt hashes); the
/// election is opened when `open` is set.
pub fn seed(db: &BenchDb, voters: usize, open: bool) -> anyhow::Result<Seeded> {
    let store = Arc::new(
        Store::connect(&db.url(), StoreConfig::default()).context("cannot open the store")?,
    );
    store.init_schema().context("cannot apply the schema")?;
    let admin = bench_admin()?;
    let mut candidates = Vec::new();
    for i in 1..=CANDIDATES {
        let c = Candidate::parse(&format!("C{i}"), &format!("Candidate {i}"), None)?;
        store.add_candidate(&admin, &c)?;
        candidates.push(c.srn);
    }
    let mut credentials = Vec::new();
    if voters > 0 {
        let roll = (1..=voters)
            .map(|i| NewVoter::parse(&format!("S{i}"), "Bench", &format!("Voter {i}"), None))
            .collect::<Result<Vec<_>, _>>()?;
        credentials = store
            .import_voters(&admin, &roll, &mut |_, _| {})
            .context("cannot seed the roll")?
            .into_iter()
            .map(|v| (v.srn.to_string(), v.credential))
            .collect();
    }
    if open {
        store.open_election(&admin)?;
    }
    Ok(Seeded {
        store,
        voters: credentials,
        candidates,
    })
}

impl Election {
    /// Seeds an election with `voters` voters (opened when `open` is set) and
    /// starts a server on it.
    pub fn start(
        server_url: &str,
        voters: usize,
        open: bool,
        config: ServerConfig,
    ) -> anyhow::Result<Election> {
        let db = BenchDb::create(server_url)?;
        let Seeded {
            store,
            voters,
            candidates,
        } = seed(&db, voters, open)?;
        let certs = TestCerts::new();
        let identity = voting_net::load_identity(&certs.cert(), &certs.key())?;
        let server = Server::bind("127.0.0.1:0", identity, Arc::clone(&store), config)?.spawn()?;
        let addr = format!("127.0.0.1:{}", server.local_addr().port());
        let client_config = ClientConfig::from_ca_file(certs.ca())?;
        Ok(Election {
            server,
            store,
            client_config,
            addr,
            voters,
            candidates,
            certs,
            db,
        })
    }

    /// Connections open on the server right now.
    pub fn active_connections(&self) -> usize {
        self.server.active_connections()
    }

    /// A new anonymous connection.
    pub fn connect(&self) -> anyhow::Result<Client> {
        Client::connect(&self.addr, &self.client_config)
            .with_context(|| format!("cannot connect to the server at {}", self.addr))
    }

    /// Opens one connection per voter, for the first `n` voters of the roll,
    /// each signed in.
    pub fn sign_in_first(&self, n: usize, threads: usize) -> anyhow::Result<Vec<Mutex<Client>>> {
        let n = n.min(self.voters.len());
        sign_in(&self.addr, &self.client_config, &self.voters[..n], threads)
    }

    /// The CA certificate clients trust (PEM).
    pub fn ca_path(&self) -> std::path::PathBuf {
        self.certs.ca()
    }

    /// Candidate for the `i`-th vote (the votes are spread over all candidates).
    pub fn candidate(&self, i: usize) -> &Srn {
        &self.candidates[i % self.candidates.len()]
    }

    /// Makes every voter eligible again and empties the ballot box, so that a
    /// measurement can cast with the same signed-in voters once more.
    pub fn reset_votes(&self) -> anyhow::Result<()> {
        let mut conn = self.db.conn()?;
        conn.query_drop("UPDATE voters SET voted = FALSE WHERE voted")?;
        conn.query_drop("TRUNCATE TABLE ballots")?;
        if has_running_counts(&mut conn)? {
            conn.query_drop("DELETE FROM tally_counts WHERE counter LIKE 'C:%'")?;
        }
        Ok(())
    }
}

/// Opens one connection per voter in `voters` to the server at `addr`, each
/// signed in as that voter, using `threads` client threads (the server checks
/// credentials on every core, so the clients need a few threads to keep it busy).
pub fn sign_in(
    addr: &str,
    config: &ClientConfig,
    voters: &[(String, Secret)],
    threads: usize,
) -> anyhow::Result<Vec<Mutex<Client>>> {
    let n = voters.len();
    let slots: Vec<Mutex<Option<Client>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    run_threads(threads.max(1), 512 * 1024, |_| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(());
        }
        let (srn, credential) = &voters[i];
        let mut client = Client::connect(addr, config)
            .with_context(|| format!("cannot connect to the server at {addr}"))?;
        client
            .login_voter(srn, credential)
            .with_context(|| format!("voter {srn} cannot sign in"))?;
        *lock(&slots[i]) = Some(client);
    })?;
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .map(Mutex::new)
                .context("a voter connection is missing")
        })
        .collect()
}

/// Whether the schema keeps running tally counts (`tally_counts`, proposed in
/// BENCHMARKS.md): then whatever the benchmark writes to the tables directly
/// must keep them in step.
pub fn has_running_counts(conn: &mut mysql::Conn) -> anyhow::Result<bool> {
    let n: Option<u64> = conn.query_first(
        "SELECT COUNT(*) FROM information_schema.tables \
         WHERE table_schema = DATABASE() AND table_name = 'tally_counts'",
    )?;
    Ok(n.unwrap_or(0) > 0)
}

/// Locks a mutex, ignoring poisoning (a panicked benchmark thread already
/// fails the run; the data is still usable for cleanup).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `body(t)` for `t` in `0..threads` on threads with `stack` bytes of
/// stack, released together once all exist; returns their results in order,
/// or the first error.
pub fn run_threads<T: Send>(
    threads: usize,
    stack: usize,
    body: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    // Held for writing while threads start; a thread that cannot start sets
    // `abort`, so the ones already waiting return instead of running.
    let gate = std::sync::RwLock::new(());
    let abort = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let closed = gate.write().unwrap_or_else(|p| p.into_inner());
        let mut handles = Vec::with_capacity(threads);
        let mut failed = None;
        for t in 0..threads {
            let (gate, abort, body) = (&gate, &abort, &body);
            let spawned =
                std::thread::Builder::new()
                    .stack_size(stack)
                    .spawn_scoped(scope, move || {
                        drop(gate.read().unwrap_or_else(|p| p.into_inner()));
                        if abort.load(Ordering::SeqCst) {
                            anyhow::bail!("aborted");
                        }
                        body(t)
                    });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    abort.store(true, Ordering::SeqCst);
                    failed = Some(anyhow::Error::new(e).context("cannot start a benchmark thread"));
                    break;
                }
            }
        }
        drop(closed);
        let results: Vec<anyhow::Result<T>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
            })
            .collect();
        match failed {
            Some(e) => Err(e),
            None => results.into_iter().collect(),
        }
    })
}
