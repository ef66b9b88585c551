//! The store: every SQL statement of the system, over a bounded `mysql::Pool`.
//!
//! Authorization is in the types: admin operations take an [`AdminSession`], which
//! only [`Store::authenticate_admin`] (or, for in-process tooling that already holds
//! the database's own credentials, [`AdminSession::trusted`]) can make; a vote takes
//! a [`VoterSession`], which only [`Store::authenticate_voter`] makes.

pub mod audit;
mod auth;
mod ballots;
mod batch;
mod candidates;
mod election;
mod roll;
mod seal;

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn, Transaction, TxOpts};

use crate::credentials::HashLimiter;
use crate::error::{mysql_codes, server_code, Result, VotingError};
use crate::types::{AdminName, Srn};

pub use auth::LoginPolicy;
pub use ballots::CastReceipt;
pub use election::ChangeToken;
pub use roll::{ImportedVoter, IMPORT_MAX_VOTERS};

/// The schema, applied by [`Store::init_schema`].
pub const SCHEMA_SQL: &str = include_str!("../../../sql/schema.sql");

/// How a [`Store`] talks to its database; the defaults suit one server process.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Most database connections this process opens (MariaDB allows 151 by default).
    pub pool_max: usize,
    /// How long an operation waits for a free connection before `database_unavailable`.
    pub pool_wait: Duration,
    /// Timeout for connecting to the database server.
    pub connect_timeout: Duration,
    /// Failed sign-in lockout rule.
    pub login: LoginPolicy,
    /// Concurrent scrypt computations (default: one per core).
    pub hash_permits: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            pool_max: 32,
            pool_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            login: LoginPolicy::default(),
            hash_permits: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// An authenticated administrator. Admin operations require one.
#[derive(Debug, Clone)]
pub struct AdminSession {
    name: AdminName,
}

impl AdminSession {
    /// An admin session without a password check, for in-process tools that are
    /// already trusted with the database itself (provisioning scripts, examples).
    /// Network code never calls this: it uses [`Store::authenticate_admin`].
    pub fn trusted(name: AdminName) -> Self {
        AdminSession { name }
    }

    /// The admin's name.
    pub fn name(&self) -> &AdminName {
        &self.name
    }

    fn actor(&self) -> String {
        format!("admin:{}", self.name)
    }
}

/// An authenticated voter. Casting a ballot requires one, and only ever casts for
/// this voter.
#[derive(Debug, Clone)]
pub struct VoterSession {
    srn: Srn,
    /// The stored credential hash this session signed in against: a cast is
    /// refused once it changed (credential reset), so resetting a leaked
    /// credential also shuts out whoever already signed in with it.
    credential_hash: String,
}

impl VoterSession {
    /// The voter's SRN.
    pub fn srn(&self) -> &Srn {
        &self.srn
    }

    pub(crate) fn credential_hash(&self) -> &str {
        &self.credential_hash
    }
}

/// What failed inside a transaction body: a rule (final) or the database (maybe retried).
pub(crate) enum Failure {
    Rule(VotingError),
    Db(mysql::Error),
}

impl From<mysql::Error> for Failure {
    fn from(e: mysql::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<VotingError> for Failure {
    fn from(e: VotingError) -> Self {
        Failure::Rule(e)
    }
}

/// How many times a transaction that lost a deadlock or lock wait is re-run.
const MAX_ATTEMPTS: u32 = 5;

/// The election database.
#[derive(Debug)]
pub struct Store {
    pool: Pool,
    config: StoreConfig,
    hashing: HashLimiter,
    sealer: seal::Sealer,
    casts: batch::CastBatcher,
}

impl Store {
    /// Connects to the database at `url` (`mysql://user:pass@host:port/db`).
    pub fn connect(url: &str, config: StoreConfig) -> Result<Store> {
        let opts =
            Opts::from_url(url).map_err(|e| VotingError::invalid(format!("database URL: {e}")))?;
        let pool_opts = PoolOpts::default()
            .with_constraints(
                PoolConstraints::new(1, config.pool_max.max(1))
                    .ok_or_else(|| VotingError::invalid("pool_max must be at least 1"))?,
            )
            // We leave no session state behind, and skipping the reset keeps the
            // prepared-statement cache warm (one round trip less per operation).
            .with_reset_connection(false)
            // A pooled connection is pinged before use, so a restarted database is
            // noticed and the connection replaced instead of failing the request.
            .with_check_health(true);
        let opts = OptsBuilder::from_opts(opts)
            .pool_opts(pool_opts)
            .tcp_connect_timeout(Some(config.connect_timeout))
            .read_timeout(Some(Duration::from_secs(30)))
            .write_timeout(Some(Duration::from_secs(30)))
            // Room for every statement text, the cast batches' padded ones
            // included (store/batch.rs): a text evicted from the cache costs a
            // prepare and a close when it comes back.
            .stmt_cache_size(Some(128))
            .init(vec!["SET time_zone = '+00:00'"]);
        let pool = Pool::new(opts).map_err(VotingError::from)?;
        let hashing = HashLimiter::new(config.hash_permits);
        Ok(Store {
            pool,
            config,
            hashing,
            sealer: seal::Sealer::default(),
            casts: batch::CastBatcher::default(),
        })
    }

    /// The configuration this store runs with.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The limiter every scrypt computation of this store goes through.
    pub fn hash_limiter(&self) -> &HashLimiter {
        &self.hashing
    }

    /// Creates or upgrades the schema; safe to run any number of times.
    pub fn init_schema(&self) -> Result<()> {
        let mut conn = self.conn()?;
        for stmt in schema_statements() {
            conn.query_drop(stmt)?;
        }
        Ok(())
    }

    /// The underlying pool, for integrators who add their own tables.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn conn(&self) -> Result<PooledConn> {
        self.pool
            .try_get_conn(self.config.pool_wait)
            .map_err(VotingError::from)
    }

    /// Runs `body` in a transaction and commits it; re-runs it when the server rolled
    /// it back for losing a race (deadlock victim, lock wait timeout, cluster
    /// certification failure — see `mysql_codes::lost_race`), so a re-run cannot
    /// double anything. Any other failure rolls back and is final.
    ///
    /// A COMMIT that gets no answer (the connection broke) is never re-run and is
    /// reported as [`VotingError::OutcomeUnknown`]: the server may have committed.
    pub(crate) fn transaction<T>(
        &self,
        opts: TxOpts,
        mut body: impl FnMut(&mut Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            let mut conn = self.conn()?;
            let outcome = match conn.start_transaction(opts) {
                Ok(mut tx) => match body(&mut tx) {
                    Ok(v) => match tx.commit() {
                        Ok(()) => Ok(v),
                        // An answer from the server: rolled back, maybe re-run below.
                        Err(e @ mysql::Error::MySqlError(_)) => Err(Failure::Db(e)),
                        Err(e) => return Err(commit_unanswered(e)),
                    },
                    Err(f) => Err(f), // dropping `tx` rolls back
                },
                Err(e) => Err(Failure::Db(e)),
            };
            match outcome {
                Ok(v) => return Ok(v),
                Err(Failure::Rule(e)) => return Err(e),
                Err(Failure::Db(e)) => {
                    let retryable = server_code(&e).is_some_and(mysql_codes::lost_race);
                    if retryable && attempt < MAX_ATTEMPTS {
                        log::debug!(
                            "transaction attempt {attempt} lost a lock race: {e}; retrying"
                        );
                        std::thread::sleep(Duration::from_millis(2u64 << attempt));
                        attempt += 1;
                        continue;
                    }
                    return Err(e.into());
                }
            }
        }
    }
}

/// The error for a COMMIT that got no answer (I/O error, closed connection): the
/// server may have committed before the connection broke, so "nothing was
/// changed" would be a guess. (A server *error* is an answer: the transaction was
/// rolled back, and the caller treats it like any other failure.)
fn commit_unanswered(e: mysql::Error) -> VotingError {
    log::warn!("COMMIT got no answer, its outcome is unknown: {e}");
    VotingError::OutcomeUnknown(e.to_string())
}

/// The statements of [`SCHEMA_SQL`], split on lines holding only `;`.
fn schema_statements() -> impl Iterator<Item = &'static str> {
    SCHEMA_SQL.split("\n;\n").map(str::trim).filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    })
}

/// Writes one audit line inside the caller's transaction, so the action and its
/// record commit together or not at all, and chains it to the previous line.
///
/// The audit chain's head row is locked last in every transaction that takes it,
/// so it orders admin actions without risking a deadlock cycle.
pub(crate) fn audit(
    tx: &mut Transaction<'_>,
    actor: &str,
    action: &str,
    detail: &str,
) -> mysql::Result<()> {
    let detail: String = detail.chars().take(1000).collect();
    let (length, prev) = seal::locked_head(tx, seal::AUDIT_CHAIN)?;
    let seq = length + 1;
    // The time as stored and as published (the hash covers the published form).
    let (at, at_rfc3339): (String, String) = tx
        .query_first(format!(
            "SELECT CAST(t AS CHAR), {} FROM (SELECT UTC_TIMESTAMP(6) AS t) now",
            rfc3339("t")
        ))?
        .unwrap_or_default();
    let hash = crate::integrity::audit_link(&prev, seq, &at_rfc3339, actor, action, &detail);
    tx.exec_drop(
        "INSERT INTO audit_log (at, actor, action, detail, seq, chain_hash) VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, action, detail, seq, &hash[..]),
    )?;
    seal::set_head(tx, seal::AUDIT_CHAIN, seq, &hash)
}

/// SQL for a DATETIME column rendered as RFC 3339 UTC.
pub(crate) fn rfc3339(column: &str) -> String {
    format!("DATE_FORMAT({column}, '%Y-%m-%dT%H:%i:%s.%fZ')")
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorCode;

    #[test]
    fn a_commit_without_an_answer_has_an_unknown_outcome() {
        let broken = mysql::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        let e = super::commit_unanswered(broken);
        assert_eq!(e.code(), ErrorCode::OutcomeUnknown);
        let message = e.to_string();
        assert!(message.contains("unknown"), "{message}");
        assert!(!message.contains("nothing was changed"), "{message}");
    }

    #[test]
    fn schema_splits_into_its_statements() {
        let stmts: Vec<_> = super::schema_statements().collect();
        assert!(stmts.len() >= 10, "{stmts:?}");
        assert!(stmts.iter().all(|s| !s.ends_with(';')));
        assert!(stmts
            .iter()
            .any(|s| s.contains("CREATE TABLE IF NOT EXISTS ballots")));
    }
}
