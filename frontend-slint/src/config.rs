//! The admin app's memory between runs: the last server and CA file, in
//! `$XDG_CONFIG_HOME/voting/admin.json` (or `~/.config/voting/admin.json`).
//! Never a password.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What is remembered.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// Server, HOST:PORT.
    #[serde(default)]
    pub server: String,
    /// Path of the CA certificate file.
    #[serde(default)]
    pub ca: String,
}

/// Where the file lives, from the environment (std only); `None` when neither
/// `XDG_CONFIG_HOME` nor `HOME` is set.
pub fn default_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".config"),
    };
    Some(base.join("voting").join("admin.json"))
}

/// The remembered settings; a missing or unreadable file remembers nothing.
pub fn load(path: &Path) -> Remembered {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Saves the settings (creating the folder). Failing to remember is not worth
/// interrupting anyone for: it is logged.
pub fn save(path: &Path, remembered: &Remembered) {
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            let json = serde_json::to_vec_pretty(remembered).map_err(std::io::Error::other)?;
            std::fs::write(path, json)
        });
    if let Err(e) = written {
        log::warn!("cannot remember the server in {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_survive_a_round_trip_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("voting").join("admin.json");
        assert_eq!(load(&path), Remembered::default());
        let remembered = Remembered {
            server: "localhost:7443".into(),
            ca: "/etc/voting/ca.pem".into(),
        };
        save(&path, &remembered);
        assert_eq!(load(&path), remembered);
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(!text.contains("password"));
    }
}
