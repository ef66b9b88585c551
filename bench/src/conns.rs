//! Item 4: memory of idle signed-in connections, measured on a real
//! `voting serve` process (so that nothing of the benchmark is counted).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use voting_net::{Client, ClientConfig};
use voting_testkit::TestCerts;

use crate::env::{open_files_limit, BenchDb};
use crate::fixture::{seed, sign_in};
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::bytes;

/// Target memory per idle connection.
const TARGET_BYTES: u64 = 64 * 1024;
/// The server's connection-thread stack ([`voting_net::ServerConfig::thread_stack`]).
fn thread_stack() -> u64 {
    voting_net::ServerConfig::default().thread_stack as u64
}
/// Voters signed in (and dropped) before the baseline is taken.
const WARM_UP: usize = 32;

/// Where the `voting` binary is expected: next to this benchmark's binary.
pub fn default_voting_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("voting")))
        .unwrap_or_else(|| PathBuf::from("voting"))
}

/// A `voting serve` child process, killed on drop.
struct ServeProcess {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl ServeProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc/<pid>` says about the server's memory.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    /// VmRSS from `status`.
    rss: u64,
    /// Threads from `status`.
    threads: u64,
    /// Resident bytes of anonymous mappings of exactly the connection-thread
    /// stack size (the connection threads' stacks).
    stacks: u64,
}

fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut stacks = 0;
    let mut size_is_stack = false;
    for line in smaps.lines() {
        if let Some(kib) = line.strip_prefix("Size:") {
            let kib: u64 = kib
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .unwrap_or(0);
            size_is_stack = kib * 1024 == thread_stack();
        } else if let Some(kib) = line.strip_prefix("Rss:") {
            if size_is_stack {
                stacks += kib
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap_or(0)
                    * 1024;
            }
        }
    }
    Ok(Memory {
        rss: field("VmRSS:") * 1024,
        threads: field("Threads:"),
        stacks,
    })
}

/// Measures item 4 with `n` idle signed-in connections to the `voting` binary at `bin`.
pub fn run(server_url: &str, bin: &Path, n: usize) -> anyhow::Result<ItemReport> {
    anyhow::ensure!(
        bin.is_file(),
        "{} not found: build it first (`cargo build --release -p frontend-cli`) or pass --voting-bin",
        bin.display()
    );
    let db = BenchDb::create(server_url)?;
    let voters = seed(&db, n + WARM_UP, true)?.voters;
    let certs = TestCerts::new();
    let server = spawn_serve(bin, &db.url(), &certs, n + WARM_UP + 64)?;
    let addr = format!("127.0.0.1:{}", server.1);
    let server = server.0;
    let config = ClientConfig::from_ca_file(certs.ca())?;
    wait_ready(&server, &addr, &config)?;

    // Warm up: the database pool, the allocator's arenas, the decoy hashes.
    let warm = sign_in(&addr, &config, &voters[n..], 8)?;
    drop(warm);
    std::thread::sleep(Duration::from_secs(2));
    let before = memory(server.pid())?;
    let start = Instant::now();
    let open = sign_in(&addr, &config, &voters[..n], 8)?;
    let opened_in = start.elapsed();
    // Let every connection thread settle into its idle wait.
    std::thread::sleep(Duration::from_secs(2));
    let after = memory(server.pid())?;
    // Prove they are alive and signed in: one request on a sample.
    for c in open.iter().step_by((n / 16).max(1)) {
        crate::fixture::lock(c)
            .eligibility()
            .context("an idle connection stopped answering")?;
    }
    drop(open);

    let per = |a: u64, b: u64| a.saturating_sub(b) / n as u64;
    let per_conn = per(after.rss, before.rss);
    let stack_per = per(after.stacks, before.stacks);
    println!(
        "  {} connections: RSS {} → {}, {} per connection ({} of it thread stack)",
        n,
        bytes(before.rss),
        bytes(after.rss),
        bytes(per_conn),
        bytes(stack_per)
    );
    let mut table = Table::new(&[
        "connections",
        "server RSS before → after",
        "threads before → after",
        "RSS per connection",
        "of which thread stack",
        "of which heap and the rest",
    ]);
    table.row(vec![
        n.to_string(),
        format!("{} → {}", bytes(before.rss), bytes(after.rss)),
        format!("{} → {}", before.threads, after.threads),
        bytes(per_conn),
        bytes(stack_per),
        bytes(per_conn.saturating_sub(stack_per)),
    ]);
    Ok(ItemReport {
        number: 4,
        title: "Idle connections",
        method: format!(
            "A real `voting serve` process ({}) with `--max-connections {}`; {WARM_UP} voters sign \
             in and leave first (warming the database pool and the allocator), then VmRSS is read \
             from /proc/<pid>/status, {n} voters sign in on their own TLS connections (taking {:.1} s) \
             and stay idle, and VmRSS is read again 2 s later. The stack share is the resident part \
             of the anonymous mappings of exactly the connection-thread stack size ({}), from \
             /proc/<pid>/smaps. The client ends live in the benchmark process.",
            bin.display(),
            n + WARM_UP + 64,
            opened_in.as_secs_f64(),
            bytes(thread_stack())
        ),
        tables: vec![table],
        verdict: Verdict {
            figure: format!("{} per connection", bytes(per_conn)),
            ceiling: "–".into(),
            ratio: None,
            target: format!("≤ {}", bytes(TARGET_BYTES)),
            met: Some(per_conn <= TARGET_BYTES),
        },
        notes: Vec::new(),
    })
}

/// Starts `voting serve` on a free loopback port; returns it and the port.
fn spawn_serve(
    bin: &Path,
    db_url: &str,
    certs: &TestCerts,
    max_connections: usize,
) -> anyhow::Result<(ServeProcess, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot find a free port")?
        .port();
    // Each connection is a socket in the server; leave room for the pool and files.
    let want = (max_connections + 256) as u64;
    let mut cmd = match open_files_limit() {
        Some(have) if have >= want => Command::new(bin),
        _ => {
            let mut c = Command::new("bash");
            c.args([
                "-c",
                "ulimit -n \"$1\" || exit 97; shift; exec \"$@\"",
                "bash",
                &want.to_string(),
            ])
            .arg(bin);
            c
        }
    };
    let log = tempfile::NamedTempFile::new().context("cannot make a log file")?;
    cmd.args(["serve", "--database-url", db_url, "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--cert")
        .arg(certs.cert())
        .arg("--key")
        .arg(certs.key())
        .arg("--max-connections")
        .arg(max_connections.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().context("cannot open the log file")?);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok((ServeProcess { child, log }, port))
}

/// Waits until the server answers `hello` (or has exited, or 20 s passed).
fn wait_ready(server: &ServeProcess, addr: &str, config: &ClientConfig) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if Client::connect(addr, config).is_ok() {
            return Ok(());
        }
        let exited = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
            .map(|s| s.contains("State:\tZ"))
            .unwrap_or(true);
        if exited || Instant::now() > deadline {
            anyhow::bail!(
                "`voting serve` did not come up (exit code 97: the open-files limit could not be raised). Its log:\n{}",
                server.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
