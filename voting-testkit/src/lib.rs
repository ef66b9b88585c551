//! Test support shared by the workspace's tests: a fresh, uniquely named database
//! per test (dropped afterwards) and dev TLS certificates in a temp dir.
//!
//! Tests take the database server from `VOTING_TEST_DATABASE_URL`
//! (`mysql://user:pass@host:port/`, set by `scripts/test.sh`); the user needs
//! CREATE and DROP on databases named `voting_test_%`.

use std::path::{Path, PathBuf};

use mysql::prelude::Queryable;

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
