//! Reconciling the server's electoral roll with a CSV file, through the client
//! API as an admin: the library side of `examples/examples/roster_sync.rs`.
//!
//! The CSV is the one `voting admin voter import` reads (header
//! `srn,first_name,last_name,dob`). Against the roll on the server:
//! - voters only in the CSV are **added**, all at once (one bulk import, all or
//!   none), and their new credentials written to a file only the owner may read;
//! - voters only on the roll are **removed**, except those who have already
//!   voted: the server keeps them (`already_voted`), so they are reported;
//! - voters in both whose names or date of birth differ are **reported only**:
//!   the protocol has no operation to change a voter, and removing and re-adding
//!   one would silently invalidate the credential they were given.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use voting_core::{ElectionState, ErrorCode, NewVoter, Srn, Voter};
use voting_net::{Client, ImportStage};

mod plan;

pub use plan::{plan_sync, read_roll_csv, SyncPlan};

/// Whether to change the roll or only say what would change.
#[derive(Debug, Clone)]
pub enum SyncMode {
    /// Report the differences; change nothing, write no file.
    DryRun,
    /// Change the roll. The credentials of added voters go to this file, which
    /// must not exist yet (credentials are never overwritten); it is created
    /// with mode 0600.
    Apply {
        /// Where to write `srn,first_name,last_name,credential`.
        credentials_out: PathBuf,
    },
}

/// What a sync did (or, in a dry run, would do), by SRN.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Voters put on the roll.
    pub added: Vec<Srn>,
    /// Voters taken off the roll.
    pub removed: Vec<Srn>,
    /// Voters not in the CSV who stay because they have voted.
    pub kept_voted: Vec<Srn>,
    /// Voters whose details differ, left as they are on the roll.
    pub changed: Vec<Srn>,
    /// Voters identical in both.
    pub unchanged: usize,
}

/// Entry point of the roster sync: reads the roll from the server (`client`
/// must be signed in as an admin), reconciles it with `wanted` as [`SyncMode`]
/// says, and writes one line per difference and a summary to `out`.
/// `progress` hears about the bulk import of added voters.
///
/// Fails before changing anything when the election is closed, when the
/// credentials file exists or cannot be created, or when the import is
/// refused (it is all or none).
pub fn sync_roster(
    client: &mut Client,
    wanted: &[NewVoter],
    mode: &SyncMode,
    progress: &mut dyn FnMut(ImportStage, u64, u64),
    out: &mut impl Write,
) -> anyhow::Result<SyncReport> {
    let status = client
        .status()
        .context("cannot read the election's status")?;
    let roll = client.voters().context("cannot read the roll")?;
    let plan = plan_sync(wanted, &roll);
    writeln!(
        out,
        "{} voters in the CSV, {} on the server's roll ({} election).",
        wanted.len(),
        roll.len(),
        status.state
    )?;
    let credentials_out = match mode {
        SyncMode::Apply { credentials_out } => credentials_out,
        SyncMode::DryRun => {
            if status.state == ElectionState::Closed {
                writeln!(
                    out,
                    "The election is closed: the roll can no longer change."
                )?;
            }
            return dry_run(&plan, out);
        }
    };
    if status.state == ElectionState::Closed {
        bail!("the election is closed: the roll can no longer change");
    }

    let mut report = SyncReport {
        unchanged: plan.unchanged,
        ..SyncReport::default()
    };
    if !plan.add.is_empty() {
        add_voters(client, &plan.add, credentials_out, progress)?;
        for voter in &plan.add {
            writeln!(out, "added    {} ({})", voter.srn, Details::of_new(voter))?;
            report.added.push(voter.srn.clone());
        }
    }
    for voter in &plan.remove {
        // Checked again by the server: the voter may have voted since we read
        // the roll, and then stays, like those we knew had voted.
        match client.remove_voter(&voter.srn) {
            Ok(()) => {
                writeln!(out, "removed  {} ({})", voter.srn, Details::of(voter))?;
                report.removed.push(voter.srn.clone());
            }
            Err(e) if e.code() == ErrorCode::AlreadyVoted => {
                report_kept(out, voter)?;
                report.kept_voted.push(voter.srn.clone());
            }
            Err(e) if e.code() == ErrorCode::NotFound => {
                writeln!(
                    out,
                    "removed  {} (already gone: someone else removed them)",
                    voter.srn
                )?;
                report.removed.push(voter.srn.clone());
            }
            // What was done so far is printed above; a second run does the rest.
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot remove {} from the roll; the sync stopped there (run it again to finish)",
                        voter.srn
                    )
                })
            }
        }
    }
    for voter in &plan.keep_voted {
        report_kept(out, voter)?;
        report.kept_voted.push(voter.srn.clone());
    }
    report_changed(out, &plan, &mut report)?;
    writeln!(
        out,
        "Summary: {} added, {} removed, {} kept because they voted, {} with other details (not updated), {} unchanged.",
        report.added.len(),
        report.removed.len(),
        report.kept_voted.len(),
        report.changed.len(),
        report.unchanged
    )?;
    if !report.added.is_empty() {
        writeln!(
            out,
            "The new voters' credentials are in {} (readable only by you): hand them out, then delete the file.",
            credentials_out.display()
        )?;
    }
    Ok(report)
}

fn dry_run(plan: &SyncPlan, out: &mut impl Write) -> anyhow::Result<SyncReport> {
    let mut report = SyncReport {
        unchanged: plan.unchanged,
        ..SyncReport::default()
    };
    for voter in &plan.add {
        writeln!(
            out,
            "would add    {} ({})",
            voter.srn,
            Details::of_new(voter)
        )?;
        report.added.push(voter.srn.clone());
    }
    for voter in &plan.remove {
        writeln!(out, "would remove {} ({})", voter.srn, Details::of(voter))?;
        report.removed.push(voter.srn.clone());
    }
    for voter in &plan.keep_voted {
        report_kept(out, voter)?;
        report.kept_voted.push(voter.srn.clone());
    }
    report_changed(out, plan, &mut report)?;
    writeln!(
        out,
        "Dry run: nothing was changed. Would add {} and remove {}; {} kept because they voted, {} with other details (not updated), {} unchanged.",
        report.added.len(),
        report.removed.len(),
        report.kept_voted.len(),
        report.changed.len(),
        report.unchanged
    )?;
    Ok(report)
}

fn report_kept(out: &mut impl Write, voter: &Voter) -> anyhow::Result<()> {
    writeln!(
        out,
        "kept     {} ({}): not in the CSV, but has voted, and a voter who voted stays on the roll",
        voter.srn,
        Details::of(voter)
    )?;
    Ok(())
}

fn report_changed(
    out: &mut impl Write,
    plan: &SyncPlan,
    report: &mut SyncReport,
) -> anyhow::Result<()> {
    for (old, new) in &plan.changed {
        writeln!(
            out,
            "differs  {}: the roll has {}, the CSV has {} (not updated: there is no operation to change a voter)",
            old.srn,
            Details::of(old),
            Details::of_new(new)
        )?;
        report.changed.push(old.srn.clone());
    }
    Ok(())
}

/// Imports `voters` and writes their credentials to a new private file.
fn add_voters(
    client: &mut Client,
    voters: &[NewVoter],
    path: &Path,
    progress: &mut dyn FnMut(ImportStage, u64, u64),
) -> anyhow::Result<()> {
    // Created before the import, so that a file problem never leaves new
    // voters on the roll without anyone knowing their credentials.
    let mut file = voting_core::roll_file::create_private(path)?;
    let imported = match client.import_voters(voters, progress) {
        Ok(imported) => imported,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e).context("the new voters were not added (the import is all or none)");
        }
    };
    let written = voting_core::roll_file::write_credentials(&mut file, voters, &imported);
    written.with_context(|| {
        format!(
            "the new voters are on the roll, but their credentials could not be saved to {}: \
             issue new ones with `voting admin voter reset-credential SRN`",
            path.display()
        )
    })
}

/// A voter's details as one phrase: `Alan Turing, born 1912-06-23`.
struct Details<'a> {
    first: &'a str,
    last: &'a str,
    dob: Option<String>,
}

impl<'a> Details<'a> {
    fn of(v: &'a Voter) -> Self {
        Details {
            first: &v.first_name,
            last: &v.last_name,
            dob: v.dob.map(|d| d.to_string()),
        }
    }

    fn of_new(v: &'a NewVoter) -> Self {
        Details {
            first: &v.first_name,
            last: &v.last_name,
            dob: v.dob.map(|d| d.to_string()),
        }
    }
}

impl fmt::Display for Details<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.first, self.last)?;
        if let Some(dob) = &self.dob {
            write!(f, ", born {dob}")?;
        }
        Ok(())
    }
}
