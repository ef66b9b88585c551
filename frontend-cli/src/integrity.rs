//! Entry points for tamper evidence: `voting admin export DIR` (publish a closed
//! election) and `voting recount FILE` (check a publication, no server needed).
//! The chain rules and the recount itself live in `voting_core::integrity`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use voting_core::integrity::recount as recount_publication;
use voting_core::{Publication, RecountReport, VotingError};
use voting_net::Client;

use crate::output::{json, say};
use crate::usage;

/// The files an export writes, in the order it writes them.
const FILES: [&str; 4] = ["publication.json", "tally.csv", "ballots.csv", "audit.csv"];

/// Entry point of `voting admin export DIR`: writes the publication of a closed
/// election as JSON (the document `voting recount` reads) and as CSV tables.
pub fn export(as_json: bool, client: &mut Client, dir: &Path) -> anyhow::Result<()> {
    let p = client.publication()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let paths: Vec<PathBuf> = FILES.iter().map(|f| dir.join(f)).collect();
    if let Some(taken) = paths.iter().find(|p| p.exists()) {
        return Err(usage(format!(
            "{} already exists: export into a new directory (a publication is never overwritten)",
            taken.display()
        )));
    }
    let mut out = create(&paths[0])?;
    serde_json::to_writer_pretty(&mut out, &p)?;
    writeln!(out)?;
    out.flush()?;

    let mut tally = csv::Writer::from_writer(create(&paths[1])?);
    tally.write_record(["candidate", "name", "affiliation", "votes"])?;
    for c in &p.tally.candidates {
        let votes = c.votes.to_string();
        let affiliation = c.affiliation.as_deref().unwrap_or("");
        tally.write_record([c.srn.as_str(), &c.name, affiliation, &votes])?;
    }
    tally.flush()?;

    let mut ballots = csv::Writer::from_writer(create(&paths[2])?);
    ballots.write_record(["seq", "candidate", "receipt_hash", "chain_hash"])?;
    for b in &p.ballots {
        let seq = b.seq.to_string();
        ballots.write_record([&seq, b.candidate.as_str(), &b.receipt_hash, &b.chain_hash])?;
    }
    ballots.flush()?;

    let mut audit = csv::Writer::from_writer(create(&paths[3])?);
    audit.write_record(["seq", "at", "actor", "action", "detail", "chain_hash"])?;
    for a in &p.audit {
        let seq = a.seq.to_string();
        audit.write_record([&seq, &a.at, &a.actor, &a.action, &a.detail, &a.chain_hash])?;
    }
    audit.flush()?;

    if as_json {
        json(&serde_json::json!({
            "files": paths,
            "ballots": p.ballots.len(),
            "ballot_chain": p.ballot_chain,
            "audit_chain": p.audit_chain,
        }));
    } else {
        say(&format!(
            "Published {} ballots and {} audit lines into {}:",
            p.ballots.len(),
            p.audit.len(),
            dir.display()
        ));
        for path in &paths {
            say(&format!("    {}", path.display()));
        }
        say(&format!(
            "Ballot chain head: {} ({} ballots)",
            p.ballot_chain.head, p.ballot_chain.length
        ));
        say("Anyone can check it with `voting recount publication.json`.");
    }
    Ok(())
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(BufWriter::new(file))
}

/// Entry point of `voting recount FILE`: recounts a publication (the JSON file,
/// or a directory holding `publication.json`) and fails with
/// `integrity_violation` when anything differs.
pub fn recount(as_json: bool, path: &Path) -> anyhow::Result<()> {
    let file = if path.is_dir() {
        path.join(FILES[0])
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))
        .map_err(|e| usage(format!("{e:#}")))?;
    let publication: Publication = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{} is not a publication: {e}", file.display())))?;
    let report = recount_publication(&publication);
    if as_json {
        json(&report);
    } else {
        print_report(&publication, &report);
    }
    if report.is_clean() {
        Ok(())
    } else {
        let n = report.problems.len();
        Err(VotingError::IntegrityViolation(format!(
            "{n} {} found in {}",
            if n == 1 { "problem" } else { "problems" },
            file.display()
        ))
        .into())
    }
}

fn print_report(p: &Publication, r: &RecountReport) {
    say(&format!("Recounted {} ballots:", r.ballots));
    for c in &p.tally.candidates {
        let counted = r.counts.get(c.srn.as_str()).copied().unwrap_or(0);
        let mark = if counted == c.votes { "ok" } else { "MISMATCH" };
        say(&format!(
            "    {:<12} {:<30} {:>7} counted, {:>7} published  {mark}",
            c.srn.as_str(),
            c.name,
            counted,
            c.votes
        ));
    }
    for (what, chain) in [
        ("Ballot chain", &r.ballot_chain),
        ("Audit chain", &r.audit_chain),
    ] {
        if chain.intact {
            say(&format!(
                "{what}: intact, {} links, head {}",
                chain.length, chain.head
            ));
        } else {
            say(&format!(
                "{what}: BROKEN: {}",
                chain.problem.as_deref().unwrap_or("unknown problem")
            ));
        }
    }
    if r.is_clean() {
        say("The publication is consistent: the tally matches the ballots and both chains are intact.");
    } else {
        say("Problems:");
        for problem in &r.problems {
            say(&format!("    - {problem}"));
        }
    }
}
