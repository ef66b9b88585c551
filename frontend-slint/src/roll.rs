//! Bulk import files, exactly as the CLI's `voter import` treats them: a CSV
//! roll (`srn,first_name,last_name,dob`) in, and a credentials CSV out,
//! created with mode 0600 *before* importing so that a file problem never
//! leaves imported voters without their credentials.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use voting_core::{ImportedVoter, NewVoter, Srn};
use voting_net::{ImportStage, NetError};

use crate::session::{Retry, Session};

/// Runs on the worker thread: reads the roll, creates the credentials file,
/// imports (all or none), writes the credentials. Returns how many voters.
/// On a failed import the empty credentials file is removed again.
pub fn import(
    session: &mut Session,
    csv: &Path,
    out: &Path,
    progress: &mut dyn FnMut(ImportStage, u64, u64),
) -> Result<usize, NetError> {
    let roll = read(csv).map_err(NetError::Config)?;
    let mut file = create_private(out).map_err(NetError::Config)?;
    let imported = match session.run(Retry::No, |c| c.import_voters(&roll, progress)) {
        Ok(imported) => imported,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
    };
    write_credentials(&mut file, &roll, &imported).map_err(NetError::Config)?;
    Ok(imported.len())
}

/// One CSV row as written by people: every field is text.
#[derive(Deserialize)]
struct Row {
    srn: String,
    first_name: String,
    last_name: String,
    #[serde(default)]
    dob: Option<String>,
}

/// Reads and validates every row; the error names the file and line.
fn read(file: &Path) -> Result<Vec<NewVoter>, String> {
    let name = file.display();
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(file)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{name}: {e}"))?
        .clone();
    for needed in ["srn", "first_name", "last_name"] {
        if !headers.iter().any(|h| h == needed) {
            return Err(format!(
                "{name}: the header must be srn,first_name,last_name,dob (no '{needed}' column)"
            ));
        }
    }
    let mut roll = Vec::new();
    for (i, row) in reader.deserialize::<Row>().enumerate() {
        let line = i + 2;
        let row = row.map_err(|e| format!("{name} line {line}: {e}"))?;
        let voter = NewVoter::parse(
            &row.srn,
            &row.first_name,
            &row.last_name,
            row.dob.as_deref(),
        )
        .map_err(|e| format!("{name} line {line}: {e}"))?;
        roll.push(voter);
    }
    if roll.is_empty() {
        return Err(format!("{name}: no voters in the file"));
    }
    Ok(roll)
}

/// Creates the credentials file, readable only by its owner; never overwrites.
fn create_private(path: &Path) -> Result<File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => format!(
            "{} already exists: choose a new file (credentials are never overwritten)",
            path.display()
        ),
        _ => format!("cannot create {}: {e}", path.display()),
    })
}

/// Writes `srn,first_name,last_name,credential` for every imported voter.
fn write_credentials(
    file: &mut File,
    roll: &[NewVoter],
    imported: &[ImportedVoter],
) -> Result<(), String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot write the credentials: {e}");
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
