//! The server: a TLS listener whose accept loop only accepts; every connection
//! gets its own thread, which does the TLS handshake and then runs the session.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslMethod, SslMode, SslVersion};
use openssl::x509::X509;
use voting_core::{ErrorCode, ResultsPolicy, Store};

use crate::error::NetError;
use crate::hub::{Hub, HubTiming};
use crate::protocol::{Event, WireError, MAX_REQUEST_LINE};
use crate::wire::{close_gracefully, write_json_line};

/// Limits and timings of a server. The defaults suit a school or union election
/// on a small machine.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most simultaneous connections; one more gets a `server_busy` event and is
    /// closed. Default 1,024.
    pub max_connections: usize,
    /// Longest request line in bytes; a longer one gets `line_too_long` and the
    /// connection is closed. Default 64 KiB.
    pub max_line: usize,
    /// Time allowed for the TLS handshake. Default 5 s.
    pub handshake_timeout: Duration,
    /// A connection that has not signed in is closed after this long without a
    /// request. Default 30 s.
    pub idle_timeout_anonymous: Duration,
    /// A signed-in connection is closed after this long without a request
    /// (subscribers are exempt). Default 15 min.
    pub idle_timeout_signed_in: Duration,
    /// Who sees the tally before the election closes. Default [`ResultsPolicy::Live`].
    pub results: ResultsPolicy,
    /// A subscribed connection checks for requests at least this often while it
    /// waits for tally events (a new event wakes it at once). Default 100 ms:
    /// every check wakes the connection's thread, which adds up with hundreds of
    /// subscribers.
    pub push_interval: Duration,
    /// While anyone is subscribed, the database's change counter is polled this
    /// often (catches changes made through other server instances). Default 25 ms.
    pub change_poll: Duration,
    /// A write to a client that stalls this long closes the connection. Default 10 s.
    pub write_timeout: Duration,
    /// Stack size of each connection's thread. Default 256 KiB: a session needs
    /// little stack, and thousands of connections must fit in memory.
    pub thread_stack: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 1024,
            max_line: MAX_REQUEST_LINE,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout_anonymous: Duration::from_secs(30),
            idle_timeout_signed_in: Duration::from_secs(15 * 60),
            results: ResultsPolicy::Live,
            push_interval: Duration::from_millis(100),
            change_poll: Duration::from_millis(25),
            write_timeout: Duration::from_secs(10),
            thread_stack: 256 * 1024,
        }
    }
}

/// The server's TLS identity: its certificate chain (leaf first) and the leaf's
/// private key, checked to belong together. Make one with [`load_identity`] or
/// [`ServerIdentity::from_pem`].
#[derive(Clone)]
pub struct ServerIdentity {
    chain: Vec<X509>,
    key: PKey<Private>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ServerIdentity")
            .field("not_after", &self.not_after())
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerIdentity {
    /// Reads a certificate chain and its private key from PEM bytes (the key in
    /// any PEM form OpenSSL reads: PKCS#8, PKCS#1/RSA or SEC1/EC).
    ///
    /// Refuses, with a sentence saying which, input that is not PEM, a key that
    /// does not belong to the certificate, and an expired certificate — mistakes
    /// that would otherwise only show as failing handshakes. `cert_name` and
    /// `key_name` name the sources in those sentences (e.g. file names).
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_name: &str,
        key_name: &str,
    ) -> Result<ServerIdentity, NetError> {
        let identity = Self::from_pem_ignoring_expiry(cert_pem, key_pem, cert_name, key_name)?;
        let now = Asn1Time::days_from_now(0).map_err(|e| NetError::Tls(e.to_string()))?;
        match identity.chain.first() {
            Some(leaf) if leaf.not_after() < now => Err(NetError::Config(format!(
                "{cert_name}: the certificate expired on {}",
                leaf.not_after()
            ))),
            _ => Ok(identity),
        }
    }

    /// [`from_pem`](Self::from_pem) without the expiry check: only for tests that
    /// need a server presenting an expired certificate.
    #[doc(hidden)]
    pub fn from_pem_ignoring_expiry(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_name: &str,
        key_name: &str,
    ) -> Result<ServerIdentity, NetError> {
        let bad = |what: &str| NetError::Config(format!("{cert_name}: {what}"));
        let chain = X509::stack_from_pem(cert_pem).map_err(|_| bad("not a PEM certificate"))?;
        let leaf = chain
            .first()
            .ok_or_else(|| bad("no certificate in the file"))?;
        let key = PKey::private_key_from_pem(key_pem)
            .map_err(|_| NetError::Config(format!("{key_name}: not a PEM private key")))?;
        let matches = leaf.public_key().is_ok_and(|public| public.public_eq(&key));
        if !matches {
            return Err(NetError::Config(format!(
                "{key_name} is not the private key of the certificate {cert_name}"
            )));
        }
        Ok(ServerIdentity { chain, key })
    }

    /// When the server certificate expires.
    pub fn not_after(&self) -> String {
        self.chain
            .first()
            .map(|c| c.not_after().to_string())
            .unwrap_or_default()
    }

    /// A TLS 1.2/1.3 acceptor (Mozilla's "intermediate" settings) for this identity.
    fn acceptor(&self) -> Result<SslAcceptor, openssl::error::ErrorStack> {
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
        b.set_private_key(&self.key)?;
        let mut certs = self.chain.iter();
        if let Some(leaf) = certs.next() {
            b.set_certificate(leaf)?;
        }
        for extra in certs {
            b.add_extra_chain_cert(extra.clone())?;
        }
        b.check_private_key()?;
        // An idle connection gives its read/write buffers back (~34 KiB each).
        b.set_mode(SslMode::RELEASE_BUFFERS);
        Ok(b.build())
    }
}

/// Loads the server's certificate chain and private key from PEM files; see
/// [`ServerIdentity::from_pem`] for what is checked.
pub fn load_identity(cert_pem: &Path, key_pem: &Path) -> Result<ServerIdentity, NetError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| NetError::Config(format!("cannot read {}: {e}", p.display())))
    };
    ServerIdentity::from_pem(
        &read(cert_pem)?,
        &read(key_pem)?,
        &cert_pem.display().to_string(),
        &key_pem.display().to_string(),
    )
}

/// What every connection thread shares.
pub(crate) struct Shared {
    pub store: Arc<Store>,
    pub config: ServerConfig,
    pub hub: Hub,
    pub shutdown: AtomicBool,
    active: AtomicUsize,
    refusing: AtomicUsize,
}

/// Connections being refused at once (each needs a handshake to say why);
/// beyond this, excess connections are dropped without a word.
const MAX_REFUSING: usize = 16;

/// A bound server, ready to [`run`](Server::run) or [`spawn`](Server::spawn).
pub struct Server {
    listener: TcpListener,
    acceptor: Arc<SslAcceptor>,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds `addr` (e.g. `"0.0.0.0:7443"`, or port 0 for any free port) and
    /// prepares TLS (1.2 or newer only) with `identity`.
    pub fn bind(
        addr: impl ToSocketAddrs,
        identity: ServerIdentity,
        store: Arc<Store>,
        config: ServerConfig,
    ) -> Result<Server, NetError> {
        let acceptor = identity
            .acceptor()
            .map_err(|e| NetError::Tls(format!("cannot set up TLS: {e}")))?;
        let listener =
            TcpListener::bind(addr).map_err(|e| NetError::Config(format!("cannot bind: {e}")))?;
        Ok(Server {
            listener,
            acceptor: Arc::new(acceptor),
            shared: Arc::new(Shared {
                store,
                config,
                hub: Hub::default(),
                shutdown: AtomicBool::new(false),
                active: AtomicUsize::new(0),
                refusing: AtomicUsize::new(0),
            }),
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, NetError> {
        self.listener.local_addr().map_err(NetError::Io)
    }

    /// Serves until [`ServerHandle::shutdown`] (or forever, when run directly).
    pub fn run(self) -> Result<(), NetError> {
        let shared = Arc::clone(&self.shared);
        let timing = HubTiming {
            poll: shared.config.change_poll,
            min_gap: Duration::from_millis(5),
            max_gap: Duration::from_millis(30),
            settle: [Duration::from_millis(150), Duration::from_secs(1)],
        };
        let broadcaster = std::thread::Builder::new()
            .name("tally-broadcaster".into())
            .spawn(move || shared.hub.run(&shared.store, timing))
            .map_err(NetError::Io)?;
        log::info!(
            "serving on {} (max {} connections, results {})",
            self.local_addr()?,
            self.shared.config.max_connections,
            self.shared.config.results.as_str()
        );
        for stream in self.listener.incoming() {
            if self.shared.shutdown.load(Ordering::SeqCst) {
                break;
            }
            match stream {
                Ok(stream) => self.dispatch(stream),
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    log::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.shared.hub.shutdown();
        let _ = broadcaster.join();
        log::info!("server stopped");
        Ok(())
    }

    /// Runs the server on a background thread.
    pub fn spawn(self) -> Result<ServerHandle, NetError> {
        let addr = self.local_addr()?;
        let shared = Arc::clone(&self.shared);
        let thread = std::thread::Builder::new()
            .name("voting-accept".into())
            .spawn(move || {
                if let Err(e) = self.run() {
                    log::error!("server stopped: {e}");
                }
            })
            .map_err(NetError::Io)?;
        Ok(ServerHandle {
            addr,
            shared,
            thread: Some(thread),
        })
    }

    /// Hands a new connection to its own thread (or refuses it when full).
    fn dispatch(&self, stream: TcpStream) {
        let config = &self.shared.config;
        if self.shared.active.load(Ordering::SeqCst) >= config.max_connections {
            self.refuse(stream);
            return;
        }
        self.shared.active.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(Arc::clone(&self.shared));
        let acceptor = Arc::clone(&self.acceptor);
        let spawned = std::thread::Builder::new()
            .name("voting-conn".into())
            .stack_size(config.thread_stack)
            .spawn(move || {
                let shared = Arc::clone(&guard.0);
                let peer = stream.peer_addr().ok();
                let config = &shared.config;
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(config.handshake_timeout));
                let _ = stream.set_write_timeout(Some(config.handshake_timeout));
                match acceptor.accept(stream) {
                    Ok(tls) => crate::session::run(tls, &shared),
                    Err(e) => log::debug!("TLS handshake with {peer:?} failed: {e}"),
                }
                drop(guard);
            });
        if let Err(e) = spawned {
            log::warn!("cannot start a connection thread: {e}");
        }
    }

    /// Tells an over-limit client why it is being turned away, on a short-lived
    /// thread (bounded), then closes.
    fn refuse(&self, stream: TcpStream) {
        if self.shared.refusing.fetch_add(1, Ordering::SeqCst) >= MAX_REFUSING {
            self.shared.refusing.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let shared = Arc::clone(&self.shared);
        let acceptor = Arc::clone(&self.acceptor);
        let spawned = std::thread::Builder::new()
            .name("voting-refuse".into())
            .stack_size(shared.config.thread_stack)
            .spawn(move || {
                let timeout = Some(Duration::from_secs(2));
                let _ = stream.set_read_timeout(timeout);
                let _ = stream.set_write_timeout(timeout);
                if let Ok(mut tls) = acceptor.accept(stream) {
                    let event = Event::Closing {
                        error: WireError::new(
                            ErrorCode::ServerBusy,
                            format!(
                                "the server is at its limit of {} connections; try again shortly",
                                shared.config.max_connections
                            ),
                        ),
                    };
                    let _ = write_json_line(&mut tls, &event);
                    close_gracefully(tls, Duration::from_secs(1));
                }
                shared.refusing.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.shared.refusing.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Frees a connection slot when the connection's thread ends, however it ends.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A server running on a background thread; dropping it stops the server.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections currently open.
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// Stops accepting, tells open connections to close (they notice within about
    /// a second), and waits for the accept loop to end.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.hub.shutdown();
        // Wake the accept loop, which is blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}
