//! What the commands print: sentences and tables for people, one JSON document
//! (or one per line with `--watch`) for programs.

use std::io::Write;

use serde::Serialize;
use voting_core::{
    AuditEntry, Candidate, CastReceipt, ElectionStatus, Eligibility, ReceiptCheck, Secret, Srn,
    Tally, Voter,
};
use voting_net::Client;

/// Writes `text` and a newline to stdout. A closed pipe (`voting … | head`) is
/// the reader saying it has enough: exit quietly instead of panicking.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{text}").and_then(|_| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Prints `value` as one line of JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) {
    say(&serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
}

/// After `voter add` / `voter reset-credential`: the credential, shown once.
pub fn credential(as_json: bool, srn: &Srn, credential: &Secret, what: &str) {
    if as_json {
        json(&serde_json::json!({ "srn": srn, "credential": credential.expose() }));
    } else {
        say(&format!(
            "{srn} {what}. Credential (shown only now; hand it to the voter):"
        ));
        say(&format!("    {}", credential.expose()));
    }
}

/// A one-line confirmation about `srn`.
pub fn done(as_json: bool, srn: &Srn, what: &str) {
    if as_json {
        json(&serde_json::json!({ "srn": srn, "ok": true }));
    } else {
        say(&format!("{srn} {what}."));
    }
}

/// The roll.
pub fn voters(as_json: bool, voters: &[Voter]) {
    if as_json {
        return json(voters);
    }
    say(&format!(
        "{:<32}  {:<40}  {:<10}  voted",
        "SRN", "name", "born"
    ));
    for v in voters {
        let name = format!("{} {}", v.first_name, v.last_name);
        let dob = v.dob.map(|d| d.to_string()).unwrap_or_default();
        say(&format!(
            "{:<32}  {:<40}  {:<10}  {}",
            v.srn.as_str(),
            name,
            dob,
            if v.voted { "yes" } else { "no" }
        ));
    }
    let voted = voters.iter().filter(|v| v.voted).count();
    say(&format!("{} voters, {voted} voted", voters.len()));
}

/// The candidates.
pub fn candidates(as_json: bool, candidates: &[Candidate]) {
    if as_json {
        return json(candidates);
    }
    for c in candidates {
        match &c.affiliation {
            Some(a) => say(&format!("{:<32}  {} ({a})", c.srn.as_str(), c.name)),
            None => say(&format!("{:<32}  {}", c.srn.as_str(), c.name)),
        }
    }
    say(&format!("{} candidates", candidates.len()));
}

/// The election's state and counts.
pub fn status(as_json: bool, s: &ElectionStatus) {
    if as_json {
        return json(s);
    }
    say(&format!("The election is {}.", s.state));
    say(&format!(
        "{} candidates, {} voters, {} voted.",
        s.candidates, s.voters, s.voted
    ));
    if let Some(at) = &s.opened_at {
        say(&format!("Opened at {at}."));
    }
    if let Some(at) = &s.closed_at {
        say(&format!("Closed at {at}."));
    }
}

/// `results [--watch]`: the tally once, or every time it changes.
pub fn results(as_json: bool, client: &mut Client, watch: bool) -> anyhow::Result<()> {
    if !watch {
        tally(as_json, &client.tally()?);
        return Ok(());
    }
    tally(as_json, &client.subscribe()?);
    for update in client.tally_updates() {
        if !as_json {
            say("");
        }
        tally(as_json, &update?);
    }
    Ok(())
}

fn tally(as_json: bool, t: &Tally) {
    if as_json {
        return json(t);
    }
    say(&format!("Results ({}):", t.state));
    let widest = t
        .candidates
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    for c in &t.candidates {
        let share = if t.ballots == 0 {
            0.0
        } else {
            c.votes as f64 * 100.0 / t.ballots as f64
        };
        let bar = "#".repeat((share / 2.5).round() as usize);
        say(&format!(
            "  {:<widest$}  {:>7}  {:>5.1}%  {bar}",
            c.name, c.votes, share
        ));
    }
    let turnout = if t.voters == 0 {
        0.0
    } else {
        t.voted as f64 * 100.0 / t.voters as f64
    };
    say(&format!(
        "{} ballots; turnout {} of {} voters ({turnout:.1}%)",
        t.ballots, t.voted, t.voters
    ));
}

/// The audit log.
pub fn audit(as_json: bool, entries: &[AuditEntry]) {
    if as_json {
        return json(entries);
    }
    for e in entries {
        say(&format!(
            "{:>6}  {}  {:<20}  {:<18}  {}",
            e.id, e.at, e.actor, e.action, e.detail
        ));
    }
}

/// The sentence a voter reads about their eligibility.
pub fn eligibility_sentence(e: Eligibility) -> &'static str {
    match e {
        Eligibility::Eligible => "you may vote now",
        Eligibility::AlreadyVoted => "you have already voted",
        Eligibility::ElectionNotOpen => "the election is not open",
        Eligibility::NotOnRoll => "you are not on the electoral roll",
    }
}

/// `check`'s answer.
pub fn eligibility(as_json: bool, srn: &str, e: Eligibility) {
    if as_json {
        json(&serde_json::json!({ "srn": srn.to_uppercase(), "eligibility": e }));
    } else {
        say(&format!(
            "{}: {}.",
            srn.to_uppercase(),
            eligibility_sentence(e)
        ));
    }
}

/// After a vote: the receipt, shown once, with the ballot's seal.
pub fn receipt(as_json: bool, r: &CastReceipt) {
    if as_json {
        return json(&serde_json::json!({
            "receipt": r.receipt.expose(),
            "ballot_id": r.ballot_id,
            "candidate": r.candidate,
            "seal": r.seal,
        }));
    }
    say(&format!("Your vote for {} is counted.", r.candidate));
    say("Your receipt (write it down; it is shown only now):");
    say(&format!("    {}", r.receipt.expose()));
    if let Some(seal) = &r.seal {
        say("and your ballot's seal (its place in the ballot chain; write it down too):");
        say(&format!("    {}", seal.short()));
    }
    say(
        "Anyone holding them can check your ballot later with `voting verify RECEIPT --seal SEAL`.",
    );
}

/// `verify`'s answer.
pub fn receipt_check(as_json: bool, c: &ReceiptCheck) {
    if as_json {
        return json(c);
    }
    match &c.seal {
        Some(seal) => say(&format!(
            "This receipt's ballot is counted, for {}: ballot {} in the chain.",
            c.candidate,
            seal.short()
        )),
        None => say(&format!(
            "This receipt's ballot is counted, for {}.",
            c.candidate
        )),
    }
    if let Some(chain) = &c.chain {
        if chain.intact {
            say(&format!(
                "The ballot chain is intact: {} ballots, head {}.",
                chain.length, chain.head
            ));
        } else {
            say(&format!(
                "WARNING: the ballot chain is broken: {}",
                chain.problem.as_deref().unwrap_or("unknown problem")
            ));
        }
    }
}
