//! The network side of both apps: a worker thread that owns the blocking
//! [`Client`], runs the UI's requests one at a time, and posts every result
//! back to the UI thread. The UI thread never waits on the network.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use slint::ComponentHandle;
use voting_core::Secret;
use voting_net::protocol::HelloReply;
use voting_net::{Client, ClientConfig, NetError};

use crate::live::TallyWatch;

/// Who the connection signs in as. Kept in memory only (never written
/// anywhere), so that a lost connection can be re-established and signed in
/// again without asking.
#[derive(Clone)]
pub enum Login {
    /// An administrator.
    Admin {
        /// Sign-in name.
        name: String,
        /// Password.
        password: Secret,
    },
    /// A voter.
    Voter {
        /// Registration number.
        srn: String,
        /// The credential the voter was given.
        credential: Secret,
    },
}

impl Login {
    fn sign_in(&self, client: &mut Client) -> Result<(), NetError> {
        match self {
            Login::Admin { name, password } => client.login_admin(name, password),
            Login::Voter { srn, credential } => client.login_voter(srn, credential),
        }
        .map(drop)
    }
}

/// Where the server is and which CA vouches for it.
#[derive(Clone)]
pub struct Target {
    server: String,
    config: ClientConfig,
}

impl Target {
    /// Reads the CA file; errors say what to fix.
    pub fn new(server: &str, ca_file: &str) -> Result<Target, NetError> {
        let (server, ca_file) = (server.trim(), ca_file.trim());
        if server.is_empty() {
            return Err(NetError::Config(
                "type the server's address, HOST:PORT".into(),
            ));
        }
        if ca_file.is_empty() {
            return Err(NetError::Config(
                "type the path of the election's CA certificate file (PEM)".into(),
            ));
        }
        Ok(Target {
            server: server.to_string(),
            config: ClientConfig::from_ca_file(ca_file)?,
        })
    }

    /// A new connection, signed in as `login` when given.
    pub fn open(&self, login: Option<&Login>) -> Result<Client, NetError> {
        let mut client = Client::connect(&self.server, &self.config)?;
        if let Some(login) = login {
            login.sign_in(&mut client)?;
        }
        Ok(client)
    }
}

/// A connection unused this long may have been closed by the server (its idle
/// timeout for anonymous connections is 30 s): it is checked before a change
/// is sent on it.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(20);

/// Whether a request may be sent again on a fresh connection when the old
/// one turns out to be dead. Reads and sign-ins may; anything that changes the
/// election may not (it may have been done before the connection broke).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Safe to repeat.
    Yes,
    /// Not safe to repeat.
    No,
}

/// The worker thread's state: the server, the sign-in, the live connection,
/// and the live tally subscription if one is running.
#[derive(Default)]
pub struct Session {
    target: Option<Target>,
    login: Option<Login>,
    client: Option<Client>,
    last_used: Option<Instant>,
    watch: Option<TallyWatch>,
}

impl Session {
    /// Connects anonymously to `target`, forgetting any previous connection.
    pub fn connect(&mut self, target: Target) -> Result<HelloReply, NetError> {
        self.forget();
        let client = target.open(None)?;
        let hello = client.server_info().clone();
        self.target = Some(target);
        self.client = Some(client);
        self.last_used = Some(Instant::now());
        Ok(hello)
    }

    /// Signs in on the current connection, and again after any reconnect.
    pub fn sign_in(&mut self, login: Login) -> Result<(), NetError> {
        self.login = None;
        self.watch = None;
        self.run(Retry::Yes, |client| login.sign_in(client))?;
        self.login = Some(login);
        Ok(())
    }

    /// Signs out: forgets the sign-in and stops the live tally. The
    /// connection itself is kept (anonymous) for receipts and results.
    pub fn sign_out(&mut self) {
        self.watch = None;
        if self.login.take().is_some() {
            if let Some(client) = self.client.as_mut() {
                if client.logout().is_err() {
                    self.client = None;
                }
            }
        }
    }

    /// Drops the connection, the sign-in and the subscription.
    pub fn forget(&mut self) {
        *self = Session::default();
    }

    /// Opens a fresh connection (signed in again, if signed in before).
    pub fn reconnect(&mut self) -> Result<(), NetError> {
        self.client = None;
        self.client().map(drop)
    }

    /// Runs one request on the connection, opening it first if needed. A
    /// broken connection is dropped (the next request reconnects); with
    /// [`Retry::Yes`] the request is tried once more on a fresh connection when
    /// an old one had gone stale (e.g. the server's idle timeout).
    pub fn run<T>(
        &mut self,
        retry: Retry,
        mut op: impl FnMut(&mut Client) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        if retry == Retry::No && self.stale() {
            // A change that cannot be repeated must not go into a connection the
            // server may have closed: check it first with a harmless request.
            self.run(Retry::Yes, still_there)?;
        }
        let reused = self.client.is_some();
        self.last_used = Some(Instant::now());
        match op(self.client()?) {
            Err(e) if !e.connection_survives() => {
                self.client = None;
                if retry == Retry::Yes && reused {
                    log::info!("connection lost ({e}); trying again on a new one");
                    let again = op(self.client()?);
                    if again.as_ref().is_err_and(|e| !e.connection_survives()) {
                        self.client = None;
                    }
                    again
                } else {
                    Err(e)
                }
            }
            outcome => outcome,
        }
    }

    fn stale(&self) -> bool {
        self.client.is_some()
            && self
                .last_used
                .is_some_and(|t| t.elapsed() > CHECK_AFTER_IDLE)
    }

    /// Starts (or restarts) the live tally on a connection of its own,
    /// signed in as this session is; `post` gets every tally and error.
    pub fn watch_tally(
        &mut self,
        post: impl Fn(Result<voting_core::Tally, NetError>) + Send + 'static,
    ) -> Result<(), NetError> {
        self.watch = None;
        let target = self.target.clone().ok_or_else(not_connected)?;
        self.watch = Some(TallyWatch::start(target, self.login.clone(), post));
        Ok(())
    }

    /// Stops the live tally.
    pub fn stop_watching(&mut self) {
        self.watch = None;
    }

    fn client(&mut self) -> Result<&mut Client, NetError> {
        let client = match self.client.take() {
            Some(client) => client,
            None => {
                let target = self.target.as_ref().ok_or_else(not_connected)?;
                target.open(self.login.as_ref())?
            }
        };
        Ok(self.client.insert(client))
    }
}

/// A harmless request: any answer from the server means the connection works.
fn still_there(client: &mut Client) -> Result<(), NetError> {
    match client.status() {
        Err(e) if !e.connection_survives() => Err(e),
        _ => Ok(()),
    }
}

fn not_connected() -> NetError {
    NetError::Config("not connected to a server yet".into())
}

/// What both windows offer the worker: a count of requests in flight (the
/// busy state), the error line, and the connection-lost flag.
pub trait Ui: ComponentHandle + 'static {
    /// Requests in flight.
    fn pending(&self) -> i32;
    /// Sets the requests in flight.
    fn set_pending(&self, n: i32);
    /// Shows an error sentence (empty: none).
    fn show_error(&self, text: &str);
    /// Shows or hides "connection lost" with its Reconnect button.
    fn set_connection_lost(&self, lost: bool);
}

/// A callback body that runs with the window (if it is still there) and the
/// worker; the callback holds the window weakly, so it never keeps it alive.
pub fn with<W: Ui>(
    ui: &W,
    worker: &Worker,
    f: impl Fn(&W, &Worker) + 'static,
) -> impl Fn() + 'static {
    let (weak, worker) = (ui.as_weak(), worker.clone());
    move || {
        if let Some(ui) = weak.upgrade() {
            f(&ui, &worker);
        }
    }
}

/// Shows `e` in words with its stable code, and flags a lost connection.
pub fn report<W: Ui>(ui: &W, e: &NetError) {
    ui.show_error(&format!("{e} ({})", e.code()));
    if !e.connection_survives() {
        ui.set_connection_lost(true);
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The UI thread's handle to the worker thread (which stops when every
/// handle is gone).
#[derive(Clone)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the worker thread with an unconnected [`Session`].
    pub fn start() -> std::io::Result<Worker> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("voting-network".into())
            .spawn(move || {
                let mut session = Session::default();
                for job in queue {
                    job(&mut session);
                }
            })?;
        Ok(Worker { jobs })
    }

    /// Runs `op` on the worker thread while the window shows it is busy, then
    /// `done` with its value on the UI thread; an error is reported instead.
    pub fn call<W: Ui, T: Send + 'static>(
        &self,
        ui: &W,
        op: impl FnOnce(&mut Session) -> Result<T, NetError> + Send + 'static,
        done: impl FnOnce(&W, T) + Send + 'static,
    ) {
        ui.show_error("");
        ui.set_pending(ui.pending() + 1);
        let weak = ui.as_weak();
        let job: Job = Box::new(move |session| {
            let outcome = op(session);
            // Fails only when the window is gone: nobody to tell.
            let _ = weak.upgrade_in_event_loop(move |ui| {
                ui.set_pending((ui.pending() - 1).max(0));
                match outcome {
                    Ok(value) => {
                        ui.set_connection_lost(false);
                        done(&ui, value);
                    }
                    Err(e) => report(&ui, &e),
                }
            });
        });
        if self.jobs.send(job).is_err() {
            ui.set_pending((ui.pending() - 1).max(0));
            ui.show_error("the network thread has stopped: restart the app");
        }
    }
}

/// Implements [`Ui`] for a window with `pending`, `error` and
/// `connection-lost` properties.
macro_rules! impl_ui {
    ($window:ty) => {
        impl $crate::session::Ui for $window {
            fn pending(&self) -> i32 {
                self.get_pending()
            }
            fn set_pending(&self, n: i32) {
                <$window>::set_pending(self, n)
            }
            fn show_error(&self, text: &str) {
                self.set_error(text.into())
            }
            fn set_connection_lost(&self, lost: bool) {
                <$window>::set_connection_lost(self, lost)
            }
        }
    };
}
pub(crate) use impl_ui;
