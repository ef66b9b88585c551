//! The voter's commands: `check`, `vote`, `verify`.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use voting_core::{Candidate, Eligibility, ErrorCode, Srn};
use voting_net::{Client, NetError};

use crate::{output, secrets, usage, Global};

/// Options of `voting vote`.
#[derive(Args)]
pub struct VoteArgs {
    /// Your SRN.
    #[arg(long)]
    srn: String,
    /// Vote for this candidate without the menu.
    #[arg(long)]
    candidate: Option<String>,
    /// Don't ask for confirmation (with --candidate, for scripts).
    #[arg(long, requires = "candidate")]
    yes: bool,
}

fn sign_in(g: &Global, srn: &str) -> anyhow::Result<Client> {
    let credential = secrets::voter_credential(srn)?;
    let mut client = g.connect()?;
    client.login_voter(srn, &credential)?;
    Ok(client)
}

/// Entry point of `voting check`: may this voter vote now?
pub fn check(g: &Global, srn: &str) -> anyhow::Result<()> {
    let mut client = sign_in(g, srn)?;
    let eligibility = client.eligibility()?;
    output::eligibility(g.json, srn, eligibility);
    Ok(())
}

/// Entry point of `voting vote`: sign in, choose, confirm, cast, show the receipt.
pub fn vote(g: &Global, args: &VoteArgs) -> anyhow::Result<()> {
    let mut client = sign_in(g, &args.srn)?;
    match client.eligibility()? {
        Eligibility::Eligible => {}
        other => {
            // Say why in the same words as the server would on a cast.
            let code = match other {
                Eligibility::AlreadyVoted => ErrorCode::AlreadyVoted,
                Eligibility::ElectionNotOpen => ErrorCode::ElectionNotOpen,
                _ => ErrorCode::NotEligible,
            };
            return Err(NetError::Remote {
                code,
                message: output::eligibility_sentence(other).to_string(),
            }
            .into());
        }
    }
    let candidates = client.candidates()?;
    let interactive = std::io::stdin().is_terminal();
    let chosen = match &args.candidate {
        Some(srn) => Srn::parse(srn)?,
        None if interactive => choose(&candidates)?,
        None => {
            return Err(usage(
                "no terminal to choose on: pass --candidate SRN --yes",
            ))
        }
    };
    if !args.yes {
        if !interactive {
            return Err(usage("no terminal to confirm on: add --yes"));
        }
        let name = candidates
            .iter()
            .find(|c| c.srn == chosen)
            .map_or(chosen.to_string(), |c| format!("{} ({})", c.name, c.srn));
        if !confirm(&format!("Vote for {name}? This cannot be undone. [y/N] "))? {
            return Err(usage("not confirmed; no vote was cast"));
        }
    }
    let receipt = client.cast(&chosen).map_err(|e| {
        let unknown = e.outcome_unknown();
        let e = anyhow::Error::new(e);
        if unknown {
            // The request may have reached the server and committed.
            e.context(format!(
                "your vote may or may not have been counted: run `voting check --srn {}` \
                 (\"already voted\" means it was; otherwise vote again)",
                args.srn
            ))
        } else {
            e
        }
    })?;
    output::receipt(g.json, &receipt);
    Ok(())
}

/// Entry point of `voting verify`: anyone holding a receipt may check it. Fails
/// with `integrity_violation` when the ballot chain is broken or the ballot's
/// seal differs from the one the voter wrote down.
pub fn verify(g: &Global, receipt: &str, written_seal: Option<&str>) -> anyhow::Result<()> {
    let mut client = g.connect()?;
    let check = client.verify(receipt)?;
    output::receipt_check(g.json, &check);
    Ok(check.confirm(written_seal)?)
}

fn ask(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line)? == 0 {
        return Err(usage("no answer; no vote was cast"));
    }
    Ok(line.trim().to_string())
}

fn choose(candidates: &[Candidate]) -> anyhow::Result<Srn> {
    eprintln!("Candidates:");
    for (i, c) in candidates.iter().enumerate() {
        let affiliation = c
            .affiliation
            .as_deref()
            .map(|a| format!(" — {a}"))
            .unwrap_or_default();
        eprintln!("  {:>2}. {} ({}){affiliation}", i + 1, c.name, c.srn);
    }
    loop {
        let answer = ask("Your choice (number or SRN): ")?;
        if let Some(c) = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| candidates.get(i))
        {
            return Ok(c.srn.clone());
        }
        if let Some(c) = Srn::parse(&answer)
            .ok()
            .and_then(|srn| candidates.iter().find(|c| c.srn == srn))
        {
            return Ok(c.srn.clone());
        }
        eprintln!(
            "'{answer}' is not on the list; type a number from 1 to {}.",
            candidates.len()
        );
    }
}

fn confirm(prompt: &str) -> anyhow::Result<bool> {
    let answer = ask(prompt)?;
    Ok(matches!(answer.to_lowercase().as_str(), "y" | "yes"))
}
