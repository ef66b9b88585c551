//! Test support shared by the workspace's tests: a fresh, uniquely named database
//! per test (dropped afterwards), dev TLS certificates in a temp dir, and a real
//! server on a free loopback port.
//!
//! Tests take the database server from `VOTING_TEST_DATABASE_URL`
//! (`mysql://user:pass@host:port/`, set by `scripts/test.sh`); the user needs
//! CREATE and DROP on databases named `voting_test_%`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mysql::prelude::Queryable;
use voting_core::{AdminName, AdminSession, Candidate, NewVoter, Secret, Store, StoreConfig};
use voting_net::{Client, ClientConfig, Server, ServerConfig, ServerHandle};

/// The admin every [`TestServer`] has.
pub const ADMIN_NAME: &str = "officer";
/// That admin's password.
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A database that exists for one test and is dropped when this value is.
pub struct TestDb {
    server_url: String,
    name: String,
}

impl TestDb {
    /// Creates `voting_test_<random>` on the test server (the schema is not applied).
    ///
    /// Panics with a clear message when `VOTING_TEST_DATABASE_URL` is not set or the
    /// server cannot be reached: a test must never pass without its database.
    pub fn new() -> TestDb {
        let server_url = std::env::var("VOTING_TEST_DATABASE_URL").expect(
            "VOTING_TEST_DATABASE_URL is not set: run the tests through scripts/test.sh, \
             or export it (mysql://user:pass@127.0.0.1:3306/)",
        );
        let server_url = server_url.trim_end_matches('/').to_string();
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).expect("randomness");
        let name = format!(
            "voting_test_{}",
            suffix
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let mut conn = mysql::Conn::new(format!("{server_url}/").as_str())
            .unwrap_or_else(|e| panic!("cannot reach the test database server: {e}"));
        conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        TestDb { server_url, name }
    }

    /// The URL of this test's database.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A direct connection, for tests that inspect or tamper with tables.
    pub fn conn(&self) -> mysql::Conn {
        mysql::Conn::new(self.url().as_str()).expect("connect to the test database")
    }
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let dropped = mysql::Conn::new(format!("{}/", self.server_url).as_str())
            .and_then(|mut c| c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name)));
        if let Err(e) = dropped {
            eprintln!("warning: could not drop test database {}: {e}", self.name);
        }
    }
}

/// A dev CA and a server certificate for `localhost` and `127.0.0.1`, in a temp
/// dir that disappears with this value.
pub struct TestCerts {
    dir: tempfile::TempDir,
}

impl TestCerts {
    /// Makes a fresh CA and a server certificate valid for `localhost`/`127.0.0.1`.
    pub fn new() -> TestCerts {
        TestCerts::with_server(&["localhost"], &["127.0.0.1"], 0, 825)
    }

    /// Makes a CA and a server certificate for the given names and addresses,
    /// valid from `from_days` (relative to now; negative is the past) for `days`.
    pub fn with_server(dns: &[&str], ips: &[&str], from_days: i32, days: u32) -> TestCerts {
        let dir = tempfile::tempdir().expect("temp dir");
        certs::write_pair(dir.path(), dns, ips, from_days, days).expect("make test certificates");
        TestCerts { dir }
    }

    /// The CA certificate (PEM) clients should trust.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    /// The server's private key (PKCS#8 PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// The folder holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for TestCerts {
    fn default() -> Self {
        TestCerts::new()
    }
}

/// An admin session for setting up or inspecting a test's store directly.
pub fn trusted_admin() -> AdminSession {
    AdminSession::trusted(AdminName::parse(ADMIN_NAME).expect("name"))
}

/// A real server over TLS on `127.0.0.1:<free port>`, backed by its own test
/// database, with one admin ([`ADMIN_NAME`] / [`ADMIN_PASSWORD`]).
pub struct TestServer {
    handle: Option<ServerHandle>,
    /// The store the server uses (tests may seed or inspect through it).
    pub store: Arc<Store>,
    /// The certificates the server presents.
    pub certs: TestCerts,
    /// The database (dropped last).
    pub db: TestDb,
}

impl TestServer {
    /// Starts a server with the default configuration.
    pub fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default())
    }

    /// Starts a server with `config` on a fresh database with the schema applied.
    pub fn start_with(config: ServerConfig) -> TestServer {
        let db = TestDb::new();
        let certs = TestCerts::new();
        let store = Arc::new(Store::connect(&db.url(), StoreConfig::default()).expect("store"));
        store.init_schema().expect("schema");
        store
            .create_admin(
                &AdminName::parse(ADMIN_NAME).expect("name"),
                &Secret::new(ADMIN_PASSWORD),
            )
            .expect("admin");
        let handle = TestServer::serve(&certs, Arc::clone(&store), config);
        TestServer {
            handle: Some(handle),
            store,
            certs,
            db,
        }
    }

    fn serve(certs: &TestCerts, store: Arc<Store>, config: ServerConfig) -> ServerHandle {
        let identity = voting_net::load_identity(&certs.cert(), &certs.key()).expect("identity");
        Server::bind("127.0.0.1:0", identity, store, config)
            .expect("bind")
            .spawn()
            .expect("spawn")
    }

    /// Starts another server instance on the same database (its own store and
    /// pool, as a second `voting serve` process would have).
    pub fn second_instance(&self, config: ServerConfig) -> ServerHandle {
        let store =
            Arc::new(Store::connect(&self.db.url(), StoreConfig::default()).expect("store"));
        TestServer::serve(&self.certs, store, config)
    }

    /// `localhost:<port>`, as a client is told to connect.
    pub fn addr(&self) -> String {
        format!("localhost:{}", self.handle().local_addr().port())
    }

    /// The running server.
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("server running")
    }

    /// Stops the server (the database stays until the value is dropped).
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown();
        }
    }

    /// A client configuration trusting this server's CA.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::from_ca_file(self.certs.ca()).expect("CA")
    }

    /// A fresh anonymous client.
    pub fn client(&self) -> Client {
        Client::connect(&self.addr(), &self.client_config()).expect("connect")
    }

    /// A client connected to another instance started with [`Self::second_instance`].
    pub fn client_of(&self, other: &ServerHandle) -> Client {
        let addr = format!("localhost:{}", other.local_addr().port());
        Client::connect(&addr, &self.client_config()).expect("connect")
    }

    /// A client signed in as the admin.
    pub fn admin(&self) -> Client {
        let mut c = self.client();
        c.login_admin(ADMIN_NAME, &Secret::new(ADMIN_PASSWORD))
            .expect("admin login");
        c
    }

    /// Puts candidates `C1..=Cn` and voters `S1..=Sm` in place directly through the
    /// store (fast setup) and returns the voters' credentials, in order.
    pub fn seed(&self, candidates: usize, voters: usize) -> Vec<(String, Secret)> {
        let admin = trusted_admin();
        for i in 1..=candidates {
            let c = Candidate::parse(&format!("C{i}"), &format!("Candidate {i}"), None)
                .expect("candidate");
            self.store.add_candidate(&admin, &c).expect("add candidate");
        }
        let roll: Vec<NewVoter> = (1..=voters)
            .map(|i| NewVoter::parse(&format!("S{i}"), "Test", &format!("Voter {i}"), None))
            .collect::<Result<_, _>>()
            .expect("voters");
        if roll.is_empty() {
            return Vec::new();
        }
        self.store
            .import_voters(&admin, &roll, &mut |_, _| {})
            .expect("import")
            .into_iter()
            .map(|v| (v.srn.to_string(), v.credential))
            .collect()
    }

    /// Opens the election through the store.
    pub fn open(&self) {
        self.store.open_election(&trusted_admin()).expect("open");
    }

    /// A TLS connection that has done its handshake and nothing else, for tests
    /// that speak the protocol by hand.
    pub fn raw_tls(&self) -> native_tls::TlsStream<TcpStream> {
        let ca = std::fs::read(self.certs.ca()).expect("CA");
        let connector = native_tls::TlsConnector::builder()
            .disable_built_in_roots(true)
            .add_root_certificate(native_tls::Certificate::from_pem(&ca).expect("CA pem"))
            .build()
            .expect("connector");
        let tcp = TcpStream::connect(self.handle().local_addr()).expect("tcp");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        connector.connect("localhost", tcp).expect("handshake")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

mod certs {
    use std::path::Path;

    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::error::ErrorStack;
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::x509::extension::{
        BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    };
    use openssl::x509::{X509Builder, X509NameBuilder, X509};

    type Res<T> = Result<T, Box<dyn std::error::Error>>;

    fn key() -> Result<PKey<Private>, ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        PKey::from_ec_key(EcKey::generate(&group)?)
    }

    fn builder(cn: &str, from_days: i32, days: u32) -> Res<X509Builder> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        let mut serial = BigNum::new()?;
        serial.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
        let serial = serial.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64;
        let start = now + i64::from(from_days) * 86_400;
        let not_before = Asn1Time::from_unix(start)?;
        let not_after = Asn1Time::from_unix(start + i64::from(days) * 86_400)?;
        b.set_not_before(&not_before)?;
        b.set_not_after(&not_after)?;
        Ok(b)
    }

    pub fn write_pair(
        dir: &Path,
        dns: &[&str],
        ips: &[&str],
        from_days: i32,
        days: u32,
    ) -> Res<()> {
        let ca_key = key()?;
        let mut ca = builder("voting test CA", -1, 3650)?;
        let mut ca_subject = X509NameBuilder::new()?;
        ca_subject.append_entry_by_nid(Nid::COMMONNAME, "voting test CA")?;
        let ca_subject = ca_subject.build();
        ca.set_issuer_name(&ca_subject)?;
        ca.set_pubkey(&ca_key)?;
        ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        ca.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        ca.sign(&ca_key, MessageDigest::sha256())?;
        let ca: X509 = ca.build();

        let server_key = key()?;
        let cn = dns.first().copied().unwrap_or("localhost");
        let mut srv = builder(cn, from_days, days)?;
        srv.set_issuer_name(ca.subject_name())?;
        srv.set_pubkey(&server_key)?;
        srv.append_extension(BasicConstraints::new().build()?)?;
        srv.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        srv.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let mut san = SubjectAlternativeName::new();
        for d in dns {
            san.dns(d);
        }
        for ip in ips {
            san.ip(ip);
        }
        let san = san.build(&srv.x509v3_context(Some(&ca), None))?;
        srv.append_extension(san)?;
        srv.sign(&ca_key, MessageDigest::sha256())?;
        let srv = srv.build();

        std::fs::write(dir.join("ca.crt"), ca.to_pem()?)?;
        std::fs::write(dir.join("server.crt"), srv.to_pem()?)?;
        std::fs::write(
            dir.join("server.key"),
            server_key.private_key_to_pem_pkcs8()?,
        )?;
        Ok(())
    }
}
