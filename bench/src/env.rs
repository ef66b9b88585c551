//! The run's surroundings: the benchmark's own databases (created and dropped
//! here), and what is recorded about the machine.

use std::process::Command;

use anyhow::Context;
use mysql::prelude::Queryable;

/// A database `voting_bench_<random hex>` that exists for one item and is
/// dropped when this value is.
pub struct BenchDb {
    server_url: String,
    name: String,
}

impl BenchDb {
    /// Creates a fresh, empty database on the server at `server_url`
    /// (`mysql://user:pass@host:port/`, no database name).
    pub fn create(server_url: &str) -> anyhow::Result<BenchDb> {
        let server_url = server_url.trim_end_matches('/').to_string();
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let hex: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("voting_bench_{hex}");
        let mut conn = server_conn(&server_url)?;
        conn.query_drop(format!("CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            .with_context(|| format!("cannot create the database {name}"))?;
        Ok(BenchDb { server_url, name })
    }

    /// The URL of this database, as a server or store is given it.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server_url, self.name)
    }

    /// A direct connection to this database (for seeding and the bare-SQL ceilings).
    pub fn conn(&self) -> anyhow::Result<mysql::Conn> {
        mysql::Conn::new(self.url().as_str())
            .with_context(|| format!("cannot connect to the database {}", self.name))
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let dropped = server_conn(&self.server_url).and_then(|mut c| {
            c.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name))
                .map_err(anyhow::Error::from)
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop the database {}: {e:#}", self.name);
        }
    }
}

fn server_conn(server_url: &str) -> anyhow::Result<mysql::Conn> {
    mysql::Conn::new(format!("{server_url}/").as_str())
        .with_context(|| format!("cannot reach the database server at {}", redact(server_url)))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = url[scheme + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// What the report says about where and when it ran.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Online CPUs (`nproc`).
    pub cores: usize,
    /// The CPU model from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Total memory.
    pub mem_mib: u64,
    /// `git rev-parse --short HEAD`, or "unknown".
    pub commit: String,
    /// Whether the working tree had uncommitted changes to tracked files.
    pub dirty: bool,
    /// UTC date and time, from the database server.
    pub date: String,
    /// `SELECT VERSION()`.
    pub mariadb: String,
    /// `/proc/loadavg` when the run started.
    pub load_start: String,
}

impl Machine {
    /// Looks at the machine, the checkout and the database server.
    pub fn probe(server_url: &str) -> anyhow::Result<Machine> {
        let mut conn = server_conn(server_url.trim_end_matches('/'))?;
        let (mariadb, date): (String, String) = conn
            .query_first("SELECT VERSION(), DATE_FORMAT(UTC_TIMESTAMP(), '%Y-%m-%d %H:%i UTC')")?
            .context("the database server answered no row")?;
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or("unknown".into(), |(_, m)| m.trim().to_string());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        Ok(Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_mib,
            commit,
            dirty,
            date,
            mariadb,
            load_start: loadavg(),
        })
    }
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minutes).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The soft limit on open files of this process (`ulimit -n`), if readable.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
