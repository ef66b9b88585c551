//! The bulk-import files, one format for every frontend: a roll CSV in
//! (`srn,first_name,last_name,dob`), a credentials CSV out
//! (`srn,first_name,last_name,credential`), created readable only by its owner
//! and never over an existing file.
//!
//! Create the credentials file *before* importing ([`create_private`]) so that a
//! file problem never leaves imported voters without their credentials.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, VotingError};
use crate::store::ImportedVoter;
use crate::types::{NewVoter, Srn};

/// One CSV row as people write it: every field is text, checked afterwards.
#[derive(Deserialize)]
struct Row {
    srn: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    dob: Option<String>,
}

/// Reads and checks a roll CSV: header `srn,first_name,last_name,dob` (`dob` may
/// be empty or absent; blanks around fields are ignored). `source` names the
/// input in messages, which give the line to fix. Refuses an empty roll and an
/// SRN listed twice.
///
/// Errors: `invalid_input`.
pub fn read_roll_csv(input: impl Read, source: &str) -> Result<Vec<NewVoter>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader
        .headers()
        .map_err(|e| VotingError::invalid(format!("{source}: cannot read the header: {e}")))?
        .clone();
    for needed in ["srn", "first_name", "last_name"] {
        if !headers.iter().any(|h| h == needed) {
            return Err(VotingError::invalid(format!(
                "{source}: the header must be srn,first_name,last_name,dob (no '{needed}' column)"
            )));
        }
    }
    let mut roll = Vec::new();
    let mut lines: HashMap<Srn, u64> = HashMap::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| VotingError::invalid(format!("{source}: unreadable row: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        let at =
            |e: &dyn std::fmt::Display| VotingError::invalid(format!("{source} line {line}: {e}"));
        let row: Row = record.deserialize(Some(&headers)).map_err(|e| at(&e))?;
        let voter = NewVoter::parse(
            &row.srn,
            &row.first_name,
            &row.last_name,
            row.dob.as_deref(),
        )
        .map_err(|e| at(&e))?;
        if let Some(first) = lines.insert(voter.srn.clone(), line) {
            return Err(at(&format!("{} is already on line {first}", voter.srn)));
        }
        roll.push(voter);
    }
    if roll.is_empty() {
        return Err(VotingError::invalid(format!(
            "{source}: no voters in the file"
        )));
    }
    Ok(roll)
}

/// Reads a roll CSV file; see [`read_roll_csv`].
pub fn read_roll_file(path: &Path) -> Result<Vec<NewVoter>> {
    let file = File::open(path)
        .map_err(|e| VotingError::invalid(format!("cannot read {}: {e}", path.display())))?;
    read_roll_csv(std::io::BufReader::new(file), &path.display().to_string())
}

/// Creates `path` for writing, readable only by its owner (mode 0600 on Unix);
/// never overwrites an existing file.
///
/// Errors: `invalid_input` (the file exists, or cannot be created).
pub fn create_private(path: &Path) -> Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| {
        VotingError::invalid(match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{} already exists: choose a new file (credentials are never overwritten)",
                path.display()
            ),
            _ => format!("cannot create {}: {e}", path.display()),
        })
    })
}

/// Writes `srn,first_name,last_name,credential` for every imported voter (names
/// taken from `roll`) and syncs the file to disk.
///
/// Errors: `internal`, naming the file problem.
pub fn write_credentials(
    file: &mut File,
    roll: &[NewVoter],
    imported: &[ImportedVoter],
) -> Result<()> {
    let failed = |e: &dyn std::fmt::Display| {
        VotingError::Internal(format!("cannot write the credentials: {e}"))
    };
    let names: HashMap<&Srn, &NewVoter> = roll.iter().map(|v| (&v.srn, v)).collect();
    let mut writer = csv::Writer::from_writer(&mut *file);
    writer
        .write_record(["srn", "first_name", "last_name", "credential"])
        .map_err(|e| failed(&e))?;
    for issued in imported {
        let (first, last) = names
            .get(&issued.srn)
            .map_or(("", ""), |v| (v.first_name.as_str(), v.last_name.as_str()));
        writer
            .write_record([issued.srn.as_str(), first, last, issued.credential.expose()])
            .map_err(|e| failed(&e))?;
    }
    writer.flush().map_err(|e| failed(&e))?;
    drop(writer);
    file.flush().map_err(|e| failed(&e))?;
    file.sync_all().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roll_reads_with_blanks_quotes_and_optional_dates() {
        let csv = "srn, first_name ,last_name,dob\ns1,Ada,\"Lovelace, Countess\",1985-12-10\nS2, Alan ,Turing,\n";
        let roll = read_roll_csv(csv.as_bytes(), "roll.csv").unwrap();
        assert_eq!(roll.len(), 2);
        assert_eq!(roll[0].srn.as_str(), "S1");
        assert_eq!(roll[0].last_name, "Lovelace, Countess");
        assert_eq!(roll[1].first_name, "Alan");
        assert!(roll[1].dob.is_none());
    }

    #[test]
    fn mistakes_name_the_line_to_fix() {
        let cases = [
            (
                "srn,first_name\nS1,Ada\n",
                "roll.csv: the header must be srn,first_name,last_name,dob (no 'last_name' column)",
            ),
            (
                "srn,first_name,last_name\nS1,Ada,L\nS 2,Alan,T\n",
                "roll.csv line 3: ",
            ),
            (
                "srn,first_name,last_name\nS1,Ada,L\ns1,Alan,T\n",
                "roll.csv line 3: S1 is already on line 2",
            ),
            (
                "srn,first_name,last_name,dob\nS1,Ada,L,1815-13-01\n",
                "roll.csv line 2: ",
            ),
            (
                "srn,first_name,last_name\n",
                "roll.csv: no voters in the file",
            ),
        ];
        for (csv, expected) in cases {
            let e = read_roll_csv(csv.as_bytes(), "roll.csv").unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
            assert!(e.to_string().contains(expected), "{csv:?}: {e}");
        }
    }
}
