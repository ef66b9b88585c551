//! Admin accounts and sign-in for admins and voters, with a lockout after repeated
//! failures that is shared by every server instance (it lives in the database).

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::TxOpts;

use super::{audit, AdminSession, Failure, Store, VoterSession};
use crate::credentials::{
    decoy_hash, hash_secret, normalize_code, verify_secret, HashCost, Secret,
};
use crate::error::{mysql_codes, server_code, Result, VotingError};
use crate::types::{AdminName, Srn};

/// Shortest admin password accepted (NIST SP 800-63B asks for at least 8).
pub const ADMIN_PASSWORD_MIN_CHARS: usize = 10;

/// When repeated failed sign-ins lock an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Consecutive failures that lock the account (the last one answers `locked_out`).
    pub max_failures: u32,
    /// How long the lock lasts.
    pub lockout: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        LoginPolicy {
            max_failures: 5,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

impl Store {
    /// Creates an administrator with a password chosen by a person.
    pub fn create_admin(&self, name: &AdminName, password: &Secret) -> Result<()> {
        let chars = password.expose().chars().count();
        if !(ADMIN_PASSWORD_MIN_CHARS..=1024).contains(&chars) {
            return Err(VotingError::invalid(format!(
                "an admin password has {ADMIN_PASSWORD_MIN_CHARS} to 1024 characters"
            )));
        }
        let hash = {
            let _permit = self.hashing.acquire();
            hash_secret(password.expose(), HashCost::ADMIN)?
        };
        self.transaction(TxOpts::default(), |tx| {
            let inserted = tx.exec_drop(
                "INSERT INTO admins (name, password_hash, created_at) VALUES (?, ?, UTC_TIMESTAMP(6))",
                (name.as_str(), &hash),
            );
            if let Err(e) = inserted {
                if server_code(&e) == Some(mysql_codes::DUP_ENTRY) {
                    return Err(VotingError::Duplicate(format!("admin {name}")).into());
                }
                return Err(e.into());
            }
            audit(tx, "local", "admin.create", name.as_str())?;
            Ok(())
        })
    }

    /// Checks an admin's name and password.
    ///
    /// Errors: `bad_credentials` (unknown name or wrong password, indistinguishable
    /// in code and timing), `locked_out`.
    pub fn authenticate_admin(&self, name: &str, password: &Secret) -> Result<AdminSession> {
        let name = AdminName::parse(name).map_err(|_| VotingError::BadCredentials)?;
        let account = format!("admin:{name}");
        self.check_secret(&account, password.expose(), HashCost::ADMIN, |conn| {
            conn.exec_first(
                "SELECT password_hash FROM admins WHERE name = ?",
                (name.as_str(),),
            )
        })?;
        Ok(AdminSession { name })
    }

    /// Checks a voter's SRN and credential (case, blanks and dashes in the
    /// credential do not matter).
    ///
    /// Errors: `invalid_input` (the SRN is not even well-formed), `bad_credentials`
    /// (unknown SRN or wrong credential, indistinguishable), `locked_out`.
    pub fn authenticate_voter(&self, srn: &str, credential: &Secret) -> Result<VoterSession> {
        let srn = Srn::parse(srn)?;
        let account = format!("voter:{srn}");
        let typed = normalize_code(credential.expose());
        let credential_hash = self.check_secret(&account, &typed, HashCost::VOTER, |conn| {
            conn.exec_first(
                "SELECT credential_hash FROM voters WHERE srn = ?",
                (srn.as_str(),),
            )
        })?;
        Ok(VoterSession {
            srn,
            credential_hash,
        })
    }

    /// The shared sign-in procedure. The lock is checked while holding a hashing
    /// slot, so at most `max_failures + hash_permits - 1` guesses per lock period
    /// get through even when an attacker sends them all at once.
    fn check_secret(
        &self,
        account: &str,
        secret: &str,
        cost: HashCost,
        lookup: impl FnOnce(&mut mysql::PooledConn) -> mysql::Result<Option<String>>,
    ) -> Result<String> {
        let (had_failures, matched) = {
            let _permit = self.hashing.acquire();
            let mut conn = self.conn()?;
            let lock: Option<(u32, Option<i64>)> = conn.exec_first(
                "SELECT failures, IF(locked_until > UTC_TIMESTAMP(6), \
                 TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(6), locked_until) + 1, NULL) \
                 FROM login_failures WHERE account = ?",
                (account,),
            )?;
            if let Some((_, Some(secs))) = lock {
                return Err(VotingError::LockedOut {
                    retry_after_secs: secs.max(1) as u64,
                });
            }
            let stored = lookup(&mut conn)?;
            // An unknown account is checked against a decoy of the same cost, so
            // its answer takes as long as a wrong secret for a real one.
            let phc = stored.as_deref().unwrap_or_else(|| decoy_hash(cost));
            let ok = verify_secret(secret, phc) && stored.is_some();
            (lock.is_some(), stored.filter(|_| ok))
        };
        if let Some(stored) = matched {
            if had_failures {
                self.conn()?
                    .exec_drop("DELETE FROM login_failures WHERE account = ?", (account,))?;
            }
            return Ok(stored);
        }
        let policy = self.config.login;
        let locked = self.transaction(TxOpts::default(), |tx| {
            // Assignments run left to right, so `locked_until` sees the new count.
            tx.exec_drop(
                "INSERT INTO login_failures (account, failures, locked_until, last_failure) \
                 VALUES (?, 1, IF(? <= 1, DATE_ADD(UTC_TIMESTAMP(6), INTERVAL ? SECOND), NULL), \
                 UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE \
                 failures = IF(locked_until IS NOT NULL AND locked_until <= UTC_TIMESTAMP(6), 1, failures + 1), \
                 locked_until = IF(failures >= ?, DATE_ADD(UTC_TIMESTAMP(6), INTERVAL ? SECOND), NULL), \
                 last_failure = UTC_TIMESTAMP(6)",
                (
                    account,
                    policy.max_failures,
                    policy.lockout.as_secs(),
                    policy.max_failures,
                    policy.lockout.as_secs(),
                ),
            )?;
            let row: Option<u32> = tx.exec_first(
                "SELECT failures FROM login_failures WHERE account = ?",
                (account,),
            )?;
            Ok::<_, Failure>(row.unwrap_or(1) >= policy.max_failures)
        })?;
        if locked {
            log::warn!(
                "{account} locked after {} failed sign-ins",
                policy.max_failures
            );
            return Err(VotingError::LockedOut {
                retry_after_secs: policy.lockout.as_secs(),
            });
        }
        Err(VotingError::BadCredentials)
    }
}
