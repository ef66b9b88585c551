//! Watching the tally as it changes: the library side of
//! `examples/examples/live_results.rs`.
//!
//! One `subscribe`, then the server pushes the whole tally whenever it
//! changes; nothing is polled. The pushes may repeat a tally already shown
//! (the first one usually equals the `subscribe` answer), so a tally is printed
//! only when it differs from the last one printed.

use std::io::Write;

use anyhow::{bail, Context};
use voting_core::{ElectionState, ErrorCode, ResultsPolicy, Secret, Tally};
use voting_net::Client;

use crate::connect::Endpoint;

/// Why watching stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// The election closed; the last tally printed is the final one.
    ElectionClosed,
    /// As many changes as asked for were printed.
    UpdatesSeen,
}

/// Connects to watch the results: anonymously when the server publishes them
/// live; signed in as `admin` when it publishes them only after the close (an
/// admin sees them always). `password` is asked only when it is needed.
pub fn connect_viewer(
    endpoint: &Endpoint,
    admin: Option<&str>,
    password: impl FnOnce(&str) -> anyhow::Result<Secret>,
) -> anyhow::Result<Client> {
    let mut client = endpoint.connect()?;
    if client.server_info().results == ResultsPolicy::AfterClose {
        if let Some(name) = admin {
            let password = password(name)?;
            client
                .login_admin(name, &password)
                .with_context(|| format!("cannot sign in as the admin '{name}'"))?;
        }
    }
    Ok(client)
}

/// Entry point of the live results watcher: subscribes on `client` and writes
/// the tally to `out` now and after every change, until the election closes or
/// `max_updates` changes have been printed (`None`: no limit).
///
/// Fails with a sentence saying what to do when the results are not public
/// yet, and when the connection is lost.
pub fn watch_results(
    client: &mut Client,
    max_updates: Option<u64>,
    out: &mut impl Write,
) -> anyhow::Result<WatchEnd> {
    let mut shown = match client.subscribe() {
        Ok(tally) => tally,
        // Kept as the cause, so the `forbidden` code still reaches the exit line.
        Err(e) if e.code() == ErrorCode::Forbidden => {
            return Err(e).context(
                "this server publishes the results when the election closes; to watch \
                 them live, sign in as an admin (--user NAME or VOTING_ADMIN)",
            )
        }
        Err(e) => return Err(e).context("cannot subscribe to the tally"),
    };
    print_tally(out, "now", &shown)?;
    if shown.state == ElectionState::Closed {
        writeln!(out, "The election is closed: these are the final results.")?;
        return Ok(WatchEnd::ElectionClosed);
    }
    let mut updates = 0;
    if max_updates == Some(0) {
        return Ok(WatchEnd::UpdatesSeen);
    }
    for tally in client.tally_updates() {
        let tally = tally.context("lost the live tally")?;
        // Every push is the whole tally: replace, never add; skip repeats.
        if tally == shown {
            continue;
        }
        updates += 1;
        print_tally(out, &format!("update {updates}"), &tally)?;
        shown = tally;
        if shown.state == ElectionState::Closed {
            writeln!(out, "The election is closed: these are the final results.")?;
            return Ok(WatchEnd::ElectionClosed);
        }
        if Some(updates) == max_updates {
            return Ok(WatchEnd::UpdatesSeen);
        }
    }
    bail!("the server stopped sending the tally")
}

/// Writes one tally: a heading, a line per candidate (votes and share of the
/// ballots), then the turnout.
pub fn print_tally(out: &mut impl Write, label: &str, tally: &Tally) -> std::io::Result<()> {
    writeln!(out, "Results, {label} (election {}):", tally.state)?;
    let widest = (tally.candidates.iter().map(|c| c.name.chars().count()))
        .max()
        .unwrap_or(0);
    let srn_width = (tally.candidates.iter().map(|c| c.srn.as_str().len()))
        .max()
        .unwrap_or(0);
    for c in &tally.candidates {
        let (srn, name) = (c.srn.as_str(), &c.name);
        let share = percent(c.votes, tally.ballots);
        let votes = if c.votes == 1 { "vote " } else { "votes" };
        writeln!(
            out,
            "  {srn:<srn_width$}  {name:<widest$}  {:>6} {votes}  {share:>5.1}%",
            c.votes
        )?;
    }
    writeln!(
        out,
        "  turnout: {} of {} voters ({:.1}%); ballots in the box: {}",
        tally.voted,
        tally.voters,
        percent(tally.voted, tally.voters),
        tally.ballots
    )?;
    out.flush()
}

/// `part` as a percentage of `whole`; 0 when there is no whole yet.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voting_core::CandidateCount;

    #[test]
    fn a_tally_reads_as_counts_shares_and_turnout() -> anyhow::Result<()> {
        let count = |srn: &str, name: &str, votes| -> anyhow::Result<CandidateCount> {
            Ok(CandidateCount {
                srn: srn.parse()?,
                name: name.into(),
                affiliation: None,
                votes,
            })
        };
        let tally = Tally {
            state: ElectionState::Open,
            candidates: vec![count("C1", "Ada Lovelace", 2)?, count("C2", "Grace", 1)?],
            ballots: 3,
            voters: 4,
            voted: 3,
        };
        let mut out = Vec::new();
        print_tally(&mut out, "update 1", &tally)?;
        assert_eq!(
            String::from_utf8(out)?,
            "Results, update 1 (election open):\n\
             \x20 C1  Ada Lovelace       2 votes   66.7%\n\
             \x20 C2  Grace              1 vote    33.3%\n\
             \x20 turnout: 3 of 4 voters (75.0%); ballots in the box: 3\n"
        );
        Ok(())
    }
}
