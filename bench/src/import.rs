//! Item 5: importing a roll from a CSV file with credentials, as
//! `voting admin voter import roll.csv --credentials-out creds.csv` does it
//! (the same client call), and how much of it is hashing.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use voting_core::{AdminName, NewVoter, Secret};
use voting_net::ImportStage;

use crate::fixture::Election;
use crate::report::{ItemReport, Table, Verdict};
use crate::stats::{rate, thousands};

/// Target wall time for 10,000 voters.
const TARGET: Duration = Duration::from_secs(30);
/// The admin the import signs in as.
const ADMIN: &str = "officer";
/// That admin's password.
const PASSWORD: &str = "correct horse battery staple";

/// Measures item 5 with `n` voters. `scrypt_rate` is the verification rate on
/// all cores measured in this run (one hash costs one verification).
pub fn run(server_url: &str, n: usize, scrypt_rate: f64) -> anyhow::Result<ItemReport> {
    let e = Election::start(server_url, 0, false, voting_net::ServerConfig::default())?;
    e.store
        .create_admin(&AdminName::parse(ADMIN)?, &Secret::new(PASSWORD))?;
    let dir = tempfile::tempdir().context("cannot make a temp dir")?;
    let roll = dir.path().join("roll.csv");
    let creds = dir.path().join("creds.csv");
    write_roll(&roll, n)?;

    let t0 = Instant::now();
    let voters = read_roll(&roll)?;
    let mut client = e.connect()?;
    client.login_admin(ADMIN, &Secret::new(PASSWORD))?;
    let signed_in = Instant::now();
    let mut hashing: Vec<(u64, Instant)> = Vec::new();
    let imported = client.import_voters(&voters, &mut |stage, done, _| {
        if stage == ImportStage::Hashing {
            hashing.push((done, Instant::now()));
        }
    })?;
    let returned = Instant::now();
    write_credentials(&creds, &voters, &imported)?;
    let total = t0.elapsed();
    anyhow::ensure!(
        imported.len() == n,
        "{} of {n} voters imported",
        imported.len()
    );

    // The first progress event comes after the first 64 hashes: extrapolate
    // the hashing phase back to its start at the observed rate.
    let (first, last) = match (hashing.first(), hashing.last()) {
        (Some(f), Some(l)) if l.0 > f.0 => (*f, *l),
        _ => anyhow::bail!("the server sent no hashing progress"),
    };
    let observed = last.1 - first.1;
    let hash_time = observed.mul_f64(n as f64 / (last.0 - first.0) as f64);
    let hash_start = last.1 - hash_time;
    let upload = hash_start.saturating_duration_since(signed_in);
    let write_db = returned - last.1;
    let share = hash_time.as_secs_f64() / total.as_secs_f64();
    let expected_hashing = n as f64 / scrypt_rate;
    println!(
        "  {n} voters in {:.1} s, hashing {:.1} s ({:.0} %)",
        total.as_secs_f64(),
        hash_time.as_secs_f64(),
        share * 100.0
    );
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mut table = Table::new(&["phase", "time", "share"]);
    let pct = |d: Duration| format!("{:.0} %", d.as_secs_f64() / total.as_secs_f64() * 100.0);
    for (name, d) in [
        (
            "read CSV, connect, admin sign-in (scrypt log_n 17)",
            signed_in - t0,
        ),
        ("upload and validation", upload),
        ("hashing credentials on the server", hash_time),
        ("writing the roll (one transaction) and the reply", write_db),
        (
            "writing the credentials file",
            total.saturating_sub(returned - t0),
        ),
        ("total", total),
    ] {
        table.row(vec![name.to_string(), secs(d), pct(d)]);
    }
    Ok(ItemReport {
        number: 5,
        title: "Import",
        method: format!(
            "A {n}-row CSV roll (`srn,first_name,last_name,dob`) is read, an admin signs in to an \
             in-process server, `Client::import_voters` uploads it (the call behind \
             `voting admin voter import`), the server generates and scrypt-hashes {n} credentials on \
             {} threads and writes the roll in one transaction, and the credentials CSV is written \
             (mode 0600). The hashing phase is timed from the server's `import_progress` events. At \
             the scrypt rate measured in this run ({}/s on all cores) hashing {n} credentials takes \
             {expected_hashing:.1} s.",
            e.store.hash_limiter().permits(),
            rate(scrypt_rate),
        ),
        tables: vec![table],
        verdict: Verdict {
            figure: format!(
                "{:.1} s for {} voters (hashing {:.0} %)",
                total.as_secs_f64(),
                thousands(n as u64),
                share * 100.0
            ),
            ceiling: "–".into(),
            ratio: None,
            target: format!("≤ {} s for 10,000 voters", TARGET.as_secs()),
            met: Some(total <= TARGET.mul_f64(n as f64 / 10_000.0)),
        },
        notes: Vec::new(),
    })
}

fn write_roll(path: &Path, n: usize) -> anyhow::Result<()> {
    let mut out = String::from("srn,first_name,last_name,dob\n");
    for i in 1..=n {
        out += &format!(
            "R{i:06},Firstname{i},Lastname{i},20{:02}-{:02}-{:02}\n",
            i % 10,
            i % 12 + 1,
            i % 28 + 1
        );
    }
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// Reads the simple CSV this item writes (no quoting needed: the benchmark
/// made it).
fn read_roll(path: &Path) -> anyhow::Result<Vec<NewVoter>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            anyhow::ensure!(f.len() == 4, "line {}: expected 4 fields", i + 2);
            Ok(NewVoter::parse(f[0], f[1], f[2], Some(f[3]))?)
        })
        .collect()
}

fn write_credentials(
    path: &Path,
    voters: &[NewVoter],
    imported: &[voting_core::ImportedVoter],
) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let names: std::collections::HashMap<&voting_core::Srn, &NewVoter> =
        voters.iter().map(|v| (&v.srn, v)).collect();
    let mut out = String::from("srn,first_name,last_name,credential\n");
    for c in imported {
        let (first, last) = names
            .get(&c.srn)
            .map_or(("", ""), |v| (v.first_name.as_str(), v.last_name.as_str()));
        out += &format!("{},{first},{last},{}\n", c.srn, c.credential.expose());
    }
    file.write_all(out.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
