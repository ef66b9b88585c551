//! Bulk import, exactly as the CLI's `voter import` does it (the file formats
//! are `voting_core::roll_file`'s): a CSV
//! roll (`srn,first_name,last_name,dob`) in, and a credentials CSV out,
//! created with mode 0600 *before* importing so that a file problem never
//! leaves imported voters without their credentials.

use std::path::Path;

use voting_core::roll_file;
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
    let config = |e: voting_core::VotingError| NetError::Config(e.to_string());
    let roll = roll_file::read_roll_file(csv).map_err(config)?;
    let mut file = roll_file::create_private(out).map_err(config)?;
    let imported = match session.run(Retry::No, |c| c.import_voters(&roll, progress)) {
        Ok(imported) => imported,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
    };
    roll_file::write_credentials(&mut file, &roll, &imported).map_err(config)?;
    Ok(imported.len())
}
