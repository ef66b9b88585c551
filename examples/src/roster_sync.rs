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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use voting_core::{ElectionState, ErrorCode, NewVoter, Srn, Voter};
use voting_net::{Client, ImportStage};

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

/// What differs between the CSV and the roll.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// In the CSV, not on the roll.
    pub add: Vec<NewVoter>,
    /// On the roll, not in the CSV, not voted.
    pub remove: Vec<Voter>,
    /// On the roll, not in the CSV, but voted: they stay.
    pub keep_voted: Vec<Voter>,
    /// In both, with other names or date of birth: (on the roll, in the CSV).
    pub changed: Vec<(Voter, NewVoter)>,
    /// In both, identical.
    pub unchanged: usize,
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

/// One CSV row as people write it: every field is text, checked afterwards.
#[derive(Deserialize)]
struct Row {
    srn: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    dob: Option<String>,
}

/// Reads and checks a roll CSV (`srn,first_name,last_name,dob`; `dob` may be
/// empty or absent). `source` names the input in messages. Refuses an empty
/// file and an SRN listed twice: syncing against either would remove voters
/// by mistake.
pub fn read_roll_csv(input: impl Read, source: &str) -> anyhow::Result<Vec<NewVoter>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .with_context(|| format!("cannot read the header of {source}"))?
        .clone();
    for needed in ["srn", "first_name", "last_name"] {
        if !headers.iter().any(|h| h == needed) {
            bail!(
                "{source}: the header must be srn,first_name,last_name,dob (no '{needed}' column)"
            );
        }
    }
    let mut roll = Vec::new();
    let mut lines: HashMap<Srn, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("{source}: unreadable row"))?;
        // The row's line in the file, for the person fixing it.
        let line = record.position().map_or(0, |p| p.line());
        let row: Row = record
            .deserialize(Some(&headers))
            .with_context(|| format!("{source} line {line}"))?;
        let voter = NewVoter::parse(
            &row.srn,
            &row.first_name,
            &row.last_name,
            row.dob.as_deref(),
        )
        .with_context(|| format!("{source} line {line}"))?;
        if let Some(first) = lines.insert(voter.srn.clone(), line) {
            bail!(
                "{source} line {line}: {} is already on line {first}",
                voter.srn
            );
        }
        roll.push(voter);
    }
    if roll.is_empty() {
        bail!("{source} lists no voters: refusing to empty the roll");
    }
    Ok(roll)
}

/// Compares the wanted roll with the server's. Pure: no I/O.
pub fn plan_sync(wanted: &[NewVoter], roll: &[Voter]) -> SyncPlan {
    let on_roll: BTreeMap<&Srn, &Voter> = roll.iter().map(|v| (&v.srn, v)).collect();
    let in_csv: BTreeMap<&Srn, &NewVoter> = wanted.iter().map(|v| (&v.srn, v)).collect();
    let mut plan = SyncPlan::default();
    for (srn, new) in &in_csv {
        match on_roll.get(srn) {
            None => plan.add.push((*new).clone()),
            Some(old) if same_details(old, new) => plan.unchanged += 1,
            Some(old) => plan.changed.push(((*old).clone(), (*new).clone())),
        }
    }
    for (srn, old) in &on_roll {
        if !in_csv.contains_key(srn) {
            let list = if old.voted {
                &mut plan.keep_voted
            } else {
                &mut plan.remove
            };
            list.push((*old).clone());
        }
    }
    plan
}

fn same_details(old: &Voter, new: &NewVoter) -> bool {
    old.first_name == new.first_name && old.last_name == new.last_name && old.dob == new.dob
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
    let mut file = create_private(path)?;
    let imported = match client.import_voters(voters, progress) {
        Ok(imported) => imported,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e).context("the new voters were not added (the import is all or none)");
        }
    };
    let names: HashMap<&Srn, &NewVoter> = voters.iter().map(|v| (&v.srn, v)).collect();
    let written = (|| -> anyhow::Result<()> {
        let mut writer = csv::Writer::from_writer(&mut file);
        writer.write_record(["srn", "first_name", "last_name", "credential"])?;
        for issued in &imported {
            let (first, last) = names
                .get(&issued.srn)
                .map_or(("", ""), |v| (v.first_name.as_str(), v.last_name.as_str()));
            writer.write_record([issued.srn.as_str(), first, last, issued.credential.expose()])?;
        }
        writer.flush()?;
        drop(writer);
        file.sync_all()?;
        Ok(())
    })();
    written.with_context(|| {
        format!(
            "the new voters are on the roll, but their credentials could not be saved to {}: \
             issue new ones with `voting admin voter reset-credential SRN`",
            path.display()
        )
    })
}

/// Creates `path` for writing, readable only by its owner; never overwrites.
fn create_private(path: &Path) -> anyhow::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} already exists: choose a new file (credentials are never overwritten)",
                path.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(srn: &str, first: &str, voted: bool) -> Voter {
        Voter {
            srn: Srn::parse(srn).expect("srn"),
            first_name: first.into(),
            last_name: "Doe".into(),
            dob: None,
            voted,
        }
    }

    #[test]
    fn the_plan_sorts_every_voter_into_exactly_one_bucket() -> anyhow::Result<()> {
        let csv = "srn,first_name,last_name,dob\ns1,Ann,Doe,\nS2,Bea,Doe,\nS4,Dan,Doe,1990-01-02\n";
        let wanted = read_roll_csv(csv.as_bytes(), "roll.csv")?;
        let roll = [
            voter("S1", "Ann", false),
            voter("S2", "Bee", true),
            voter("S3", "Cid", false),
            voter("S5", "Eve", true),
        ];
        let plan = plan_sync(&wanted, &roll);
        let srns = |v: &[Voter]| v.iter().map(|v| v.srn.to_string()).collect::<Vec<_>>();
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].srn.as_str(), "S4");
        assert_eq!(srns(&plan.remove), ["S3"]);
        assert_eq!(srns(&plan.keep_voted), ["S5"]);
        assert_eq!(plan.changed.len(), 1);
        assert_eq!(plan.changed[0].1.first_name, "Bea");
        assert_eq!(plan.unchanged, 1);
        Ok(())
    }

    #[test]
    fn a_csv_that_would_empty_or_confuse_the_roll_is_refused() {
        let refused = |csv: &str| {
            read_roll_csv(csv.as_bytes(), "roll.csv")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(refused("srn,first_name,last_name,dob\n").contains("refusing to empty the roll"));
        let twice = refused("srn,first_name,last_name\nS1,A,B\ns1,C,D\n");
        assert!(twice.contains("S1 is already on line 2"), "{twice}");
        assert!(refused("srn,name\nS1,A\n").contains("no 'first_name' column"));
        assert!(refused("srn,first_name,last_name,dob\nS1,A,B,1990-02-30\n").contains("line 2"));
    }
}
