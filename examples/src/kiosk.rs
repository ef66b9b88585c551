//! A polling-station kiosk: one voter after another signs in, sees whether they
//! may vote, picks a candidate, confirms, and leaves with a receipt. The
//! library side of `examples/examples/kiosk.rs`.
//!
//! Each voter gets a connection of their own that is dropped when they leave:
//! nothing of one voter (sign-in, credential, receipt) survives into the next
//! voter's turn, and no connection sits idle between voters (the server closes
//! anonymous connections after 30 s without a request).

use std::io::{BufRead, Write};

use anyhow::Context;
use voting_core::{Candidate, Eligibility, ErrorCode, Secret, Srn};
use voting_net::Client;

use crate::connect::Endpoint;

/// How the kiosk uses its screen and keyboard.
#[derive(Debug, Clone, Copy, Default)]
pub struct KioskScreen {
    /// Read credentials from the terminal without echo (on a real kiosk), rather
    /// than as a line of the input (scripted input, tests).
    pub hide_credentials: bool,
    /// Clear the screen before each voter, so that nobody reads the previous
    /// voter's choice or receipt.
    pub clear_between_voters: bool,
}

/// What the kiosk did, for the poll worker who closes it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KioskSummary {
    /// Ballots cast at this kiosk.
    pub ballots_cast: u64,
    /// Voters who signed in or tried to, and left without casting.
    pub left_without_voting: u64,
}

/// How one voter's turn ended.
enum Turn {
    Voted,
    NoBallot,
    EndOfInput,
}

/// Entry point of the kiosk: serves voters from `input` (answers one per line)
/// until it ends, writing every prompt and message to `out`. A voter's
/// mistake or refusal (wrong credential, already voted, …) is explained and
/// the next voter is served; only the end of the input, or failing to read
/// the keyboard or write the screen, ends it.
pub fn run_kiosk(
    endpoint: &Endpoint,
    input: &mut impl BufRead,
    out: &mut impl Write,
    screen: KioskScreen,
) -> anyhow::Result<KioskSummary> {
    let mut summary = KioskSummary::default();
    loop {
        if screen.clear_between_voters {
            // ANSI: erase the screen and the scroll-back, cursor to the top.
            write!(out, "\x1b[2J\x1b[3J\x1b[H")?;
        }
        writeln!(out, "=== Polling station: next voter, please ===")?;
        let Some(typed) = ask(input, out, "Your SRN: ")? else {
            break;
        };
        if typed.is_empty() {
            continue;
        }
        let Ok(srn) = Srn::parse(&typed) else {
            writeln!(
                out,
                "'{typed}' is not an SRN (letters, digits, '-' and '_'). Please try again."
            )?;
            continue;
        };
        let credential = if screen.hide_credentials {
            let typed = rpassword::prompt_password(format!("Credential for {srn}: "))
                .context("cannot read the credential from the terminal")?;
            Secret::new(typed)
        } else {
            match ask(input, out, &format!("Credential for {srn}: "))? {
                Some(typed) => Secret::new(typed),
                None => break,
            }
        };
        if credential.expose().trim().is_empty() {
            // Not sent: an empty attempt would count towards the lock-out.
            writeln!(out, "No credential typed. Please start again.")?;
            continue;
        }
        let turn = match voter_turn(endpoint, &srn, credential, input, out) {
            Ok(turn) => turn,
            Err(e) => {
                writeln!(out, "Sorry: {e:#}.")?;
                writeln!(out, "Please ask a poll worker for help.")?;
                Turn::NoBallot
            }
        };
        match turn {
            Turn::Voted => summary.ballots_cast += 1,
            Turn::NoBallot => summary.left_without_voting += 1,
            Turn::EndOfInput => {
                writeln!(out, "No vote was cast.")?;
                summary.left_without_voting += 1;
                break;
            }
        }
        writeln!(out, "Thank you. This kiosk has forgotten your session.\n")?;
    }
    writeln!(
        out,
        "Kiosk closed. Ballots cast here: {}; voters who left without casting one: {}.",
        summary.ballots_cast, summary.left_without_voting
    )?;
    Ok(summary)
}

/// One voter, from sign-in to receipt, on a connection of their own. Problems
/// the voter can act on are explained here and end the turn; anything else is
/// an error for [`run_kiosk`] to report.
fn voter_turn(
    endpoint: &Endpoint,
    srn: &Srn,
    credential: Secret,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<Turn> {
    let mut client = endpoint.connect()?;
    match client.login_voter(srn.as_str(), &credential) {
        Ok(_) => drop(credential),
        Err(e) if e.code() == ErrorCode::BadCredentials => {
            writeln!(
                out,
                "That SRN and credential do not match. Check the credential you were \
                 given (case and dashes don't matter) and try again."
            )?;
            return Ok(Turn::NoBallot);
        }
        // The message says how long the lock lasts.
        Err(e) if e.code() == ErrorCode::LockedOut => {
            writeln!(out, "{e}. A poll worker can issue you a new credential.")?;
            return Ok(Turn::NoBallot);
        }
        Err(e) => return Err(e).context("cannot sign you in"),
    }
    let eligibility = client.eligibility()?;
    writeln!(out, "{srn}: {}", eligibility_in_words(eligibility))?;
    if eligibility != Eligibility::Eligible {
        return Ok(Turn::NoBallot);
    }
    let candidates = client.candidates()?;
    let Some(choice) = choose(&candidates, input, out)? else {
        return Ok(Turn::EndOfInput);
    };
    let Some(chosen) = choice else {
        writeln!(out, "You left without voting; no vote was cast.")?;
        return Ok(Turn::NoBallot);
    };
    cast(&mut client, chosen, input, out)
}

/// Casts for `chosen` and shows the receipt until the voter is done.
fn cast(
    client: &mut Client,
    chosen: &Candidate,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<Turn> {
    let receipt = match client.cast(&chosen.srn) {
        Ok(receipt) => receipt,
        Err(e) if e.code() == ErrorCode::AlreadyVoted => {
            writeln!(
                out,
                "You have already voted (a moment ago, elsewhere?): this ballot was not cast."
            )?;
            return Ok(Turn::NoBallot);
        }
        Err(e) if e.code() == ErrorCode::ElectionNotOpen => {
            writeln!(out, "The election has closed: this ballot was not cast.")?;
            return Ok(Turn::NoBallot);
        }
        // The server answered that nothing was recorded.
        Err(e) if !e.outcome_unknown() => return Err(e).context("your vote was not cast"),
        // No answer, or the database broke while committing: the ballot may
        // have been recorded.
        Err(e) => {
            return Err(e).context(
                "something broke while your ballot was being recorded, so it may or may \
                 not be counted; a poll worker can check whether you have voted",
            )
        }
    };
    writeln!(
        out,
        "Your vote for {} ({}) is counted.",
        chosen.name, chosen.srn
    )?;
    writeln!(out, "Your receipt (write it down; it is shown only now):")?;
    writeln!(out, "    {}", receipt.receipt.expose())?;
    // The seal is missing only if sealing failed after the commit; the vote
    // counts all the same, and `verify` gives the seal later.
    if let Some(seal) = &receipt.seal {
        writeln!(
            out,
            "and your ballot's seal (its place in the ballot chain; write it down too):"
        )?;
        writeln!(out, "    {}", seal.short())?;
    }
    writeln!(
        out,
        "With them, anyone can check later that your ballot is counted: \
         voting verify RECEIPT --seal SEAL"
    )?;
    // Shown until the voter says they are done; an end of input ends it too.
    ask(input, out, "Press Enter when you have written it down. ")?;
    Ok(Turn::Voted)
}

/// Lists the candidates and asks until the voter picks and confirms one.
/// `Ok(None)`: the input ended; `Ok(Some(None))`: the voter left.
fn choose<'c>(
    candidates: &'c [Candidate],
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> anyhow::Result<Option<Option<&'c Candidate>>> {
    loop {
        writeln!(out, "Candidates:")?;
        for (i, c) in candidates.iter().enumerate() {
            let affiliation =
                (c.affiliation.as_deref()).map_or(String::new(), |a| format!(", {a}"));
            writeln!(out, "  {}. {} ({}){affiliation}", i + 1, c.name, c.srn)?;
        }
        let prompt = "Your choice (number or SRN; just Enter to leave without voting): ";
        let Some(answer) = ask(input, out, prompt)? else {
            return Ok(None);
        };
        if answer.is_empty() {
            return Ok(Some(None));
        }
        let Some(candidate) = find(candidates, &answer) else {
            writeln!(
                out,
                "'{answer}' is not on the list: type a number from 1 to {}.",
                candidates.len()
            )?;
            continue;
        };
        let question = format!(
            "Vote for {} ({})? This cannot be undone. Type yes to cast it: ",
            candidate.name, candidate.srn
        );
        let Some(answer) = ask(input, out, &question)? else {
            return Ok(None);
        };
        if matches!(answer.to_lowercase().as_str(), "y" | "yes") {
            return Ok(Some(Some(candidate)));
        }
        writeln!(out, "Not cast. Choose again.")?;
    }
}

/// The candidate a voter means by a list number or an SRN.
fn find<'c>(candidates: &'c [Candidate], answer: &str) -> Option<&'c Candidate> {
    if let Ok(n) = answer.parse::<usize>() {
        return n.checked_sub(1).and_then(|i| candidates.get(i));
    }
    let srn = Srn::parse(answer).ok()?;
    candidates.iter().find(|c| c.srn == srn)
}

/// What an eligibility answer means to the voter.
pub fn eligibility_in_words(e: Eligibility) -> &'static str {
    match e {
        Eligibility::Eligible => "you may vote now.",
        Eligibility::AlreadyVoted => {
            "you have already voted. Each voter votes once, and your ballot is counted."
        }
        Eligibility::ElectionNotOpen => "the election is not open, so no vote can be cast now.",
        Eligibility::NotOnRoll => "you are not on the electoral roll. Please ask a poll worker.",
    }
}

/// Writes `prompt`, reads one line; `None` at the end of the input.
fn ask(
    input: &mut impl BufRead,
    out: &mut impl Write,
    prompt: &str,
) -> anyhow::Result<Option<String>> {
    write!(out, "{prompt}")?;
    out.flush()?;
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        writeln!(out)?;
        return Ok(None);
    }
    Ok(Some(line.trim().to_string()))
}
