//! The one error type of the library and the stable codes that travel on the wire.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{ElectionState, Srn};

/// A stable, machine-readable error code.
///
/// The string form (`already_voted`, …) is part of the protocol and of the CLI's
/// output: it never changes meaning once released. New codes may be added; a peer
/// that does not know a code sees [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// A field failed validation (an SRN with a space, an empty name, a bad date, …).
    InvalidInput,
    /// The request line is not a JSON object of the expected shape.
    MalformedRequest,
    /// The request names an operation the server does not know.
    UnknownOp,
    /// A request line exceeded the server's maximum line length.
    LineTooLong,
    /// The client speaks a protocol version the server does not.
    UnsupportedVersion,
    /// The caller's role may not perform this operation.
    Forbidden,
    /// Unknown account or wrong password/credential (deliberately not saying which).
    BadCredentials,
    /// Too many failed sign-ins: the account is locked for a while.
    LockedOut,
    /// The voter is not on the electoral roll.
    NotEligible,
    /// The voter has already voted (or, for removal, a voter who voted cannot be removed).
    AlreadyVoted,
    /// The ballot names a candidate who is not standing.
    UnknownCandidate,
    /// Voting is only possible while the election is open.
    ElectionNotOpen,
    /// The operation is not allowed in the election's current state.
    WrongState,
    /// A voter, candidate or admin with this key already exists.
    Duplicate,
    /// The voter, candidate or receipt does not exist.
    NotFound,
    /// The server is at its connection limit.
    ServerBusy,
    /// The connection was idle for too long and is being closed.
    IdleTimeout,
    /// The database cannot be reached or was too busy; nothing was changed. Retry later.
    DatabaseUnavailable,
    /// The database connection broke while committing: the change may or may not
    /// have been made. Check before repeating (a voter: eligibility; a ballot: its
    /// receipt). Repeating a vote is safe: it succeeds or answers `already_voted`.
    OutcomeUnknown,
    /// An unexpected server-side failure; nothing was changed.
    Internal,
    /// A hash chain or a recount does not match: ballots or audit lines were
    /// changed, added or removed behind the system's back.
    IntegrityViolation,
    /// Client side: the server could not be reached, or the connection broke.
    ConnectionFailed,
    /// Client side: the TLS handshake failed (e.g. the server is not trusted by the CA file).
    TlsFailed,
    /// Client side: the server sent something that is not valid protocol.
    ProtocolError,
    /// A code this version does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code, in documentation order.
    pub const ALL: [ErrorCode; 25] = [
        ErrorCode::InvalidInput,
        ErrorCode::MalformedRequest,
        ErrorCode::UnknownOp,
        ErrorCode::LineTooLong,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Forbidden,
        ErrorCode::BadCredentials,
        ErrorCode::LockedOut,
        ErrorCode::NotEligible,
        ErrorCode::AlreadyVoted,
        ErrorCode::UnknownCandidate,
        ErrorCode::ElectionNotOpen,
        ErrorCode::WrongState,
        ErrorCode::Duplicate,
        ErrorCode::NotFound,
        ErrorCode::ServerBusy,
        ErrorCode::IdleTimeout,
        ErrorCode::DatabaseUnavailable,
        ErrorCode::OutcomeUnknown,
        ErrorCode::Internal,
        ErrorCode::IntegrityViolation,
        ErrorCode::ConnectionFailed,
        ErrorCode::TlsFailed,
        ErrorCode::ProtocolError,
        ErrorCode::Unknown,
    ];

    /// The stable string form, as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::UnknownOp => "unknown_op",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::BadCredentials => "bad_credentials",
            ErrorCode::LockedOut => "locked_out",
            ErrorCode::NotEligible => "not_eligible",
            ErrorCode::AlreadyVoted => "already_voted",
            ErrorCode::UnknownCandidate => "unknown_candidate",
            ErrorCode::ElectionNotOpen => "election_not_open",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::Duplicate => "duplicate",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServerBusy => "server_busy",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::DatabaseUnavailable => "database_unavailable",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::Internal => "internal",
            ErrorCode::IntegrityViolation => "integrity_violation",
            ErrorCode::ConnectionFailed => "connection_failed",
            ErrorCode::TlsFailed => "tls_failed",
            ErrorCode::ProtocolError => "protocol_error",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::str::FromStr for ErrorCode {
    type Err = ();
    /// Parses the wire form; unknown strings are an error (not [`ErrorCode::Unknown`]).
    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| *c != ErrorCode::Unknown && c.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the library. [`VotingError::code`] says which kind.
///
/// Messages are sentences a voter or an admin can read; they never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum VotingError {
    /// A field failed validation.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The caller's role may not do this.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// Unknown account or wrong secret; deliberately does not say which.
    #[error("unknown name or SRN, or wrong password or credential")]
    BadCredentials,
    /// The voter's credential was reset after this session signed in: the old
    /// credential no longer votes. Code `bad_credentials`.
    #[error(
        "the credential of {0} was replaced since you signed in: sign in again with the new one"
    )]
    CredentialReset(Srn),
    /// Too many failed sign-ins.
    #[error(
        "too many failed sign-ins: this account is locked for {retry_after_secs} more seconds"
    )]
    LockedOut {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// The voter is not (or no longer) on the roll.
    #[error("{0} is not on the electoral roll")]
    NotEligible(Srn),
    /// The voter has already voted.
    #[error("{0} has already voted")]
    AlreadyVoted(Srn),
    /// No such candidate.
    #[error("there is no candidate {0}")]
    UnknownCandidate(String),
    /// Voting needs an open election.
    #[error("the election is not open (it is {0})")]
    ElectionNotOpen(ElectionState),
    /// The election's state forbids this operation.
    #[error("{0}")]
    WrongState(String),
    /// The key is taken.
    #[error("{0} already exists")]
    Duplicate(String),
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The database cannot be reached or timed out.
    #[error("the database is unavailable; nothing was changed ({0})")]
    DatabaseUnavailable(String),
    /// The connection to the database broke while committing: the change may or
    /// may not have been made. Code `outcome_unknown`.
    #[error(
        "the database connection broke while saving, so whether this was done is unknown: \
         check before repeating it (a voter: check eligibility, or verify a receipt); \
         repeating a vote is safe, it is counted once at most ({0})"
    )]
    OutcomeUnknown(String),
    /// Something unexpected; details are in the server log.
    #[error("internal error: {0}")]
    Internal(String),
    /// A chain or a recount does not match what was recorded.
    #[error("integrity check failed: {0}")]
    IntegrityViolation(String),
}

impl VotingError {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            VotingError::InvalidInput(_) => ErrorCode::InvalidInput,
            VotingError::Forbidden(_) => ErrorCode::Forbidden,
            VotingError::BadCredentials | VotingError::CredentialReset(_) => {
                ErrorCode::BadCredentials
            }
            VotingError::LockedOut { .. } => ErrorCode::LockedOut,
            VotingError::NotEligible(_) => ErrorCode::NotEligible,
            VotingError::AlreadyVoted(_) => ErrorCode::AlreadyVoted,
            VotingError::UnknownCandidate(_) => ErrorCode::UnknownCandidate,
            VotingError::ElectionNotOpen(_) => ErrorCode::ElectionNotOpen,
            VotingError::WrongState(_) => ErrorCode::WrongState,
            VotingError::Duplicate(_) => ErrorCode::Duplicate,
            VotingError::NotFound(_) => ErrorCode::NotFound,
            VotingError::DatabaseUnavailable(_) => ErrorCode::DatabaseUnavailable,
            VotingError::OutcomeUnknown(_) => ErrorCode::OutcomeUnknown,
            VotingError::Internal(_) => ErrorCode::Internal,
            VotingError::IntegrityViolation(_) => ErrorCode::IntegrityViolation,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        VotingError::InvalidInput(msg.into())
    }
}

/// Result alias for the library.
pub type Result<T, E = VotingError> = std::result::Result<T, E>;

/// MySQL server error numbers we treat specially.
pub(crate) mod mysql_codes {
    /// ER_DUP_ENTRY
    pub const DUP_ENTRY: u16 = 1062;
    /// ER_LOCK_WAIT_TIMEOUT
    pub const LOCK_WAIT_TIMEOUT: u16 = 1205;
    /// ER_LOCK_DEADLOCK (also Galera's lost certification)
    pub const DEADLOCK: u16 = 1213;
    /// ER_TRANSACTION_ROLLBACK_DURING_COMMIT (MySQL Group Replication certification)
    pub const GR_ROLLBACK: u16 = 3101;
    /// TiDB write conflict (optimistic transactions)
    pub const TIDB_WRITE_CONFLICT: u16 = 9007;

    /// Errors after which the server has rolled the transaction back because it
    /// lost a race: re-running it is safe and usually succeeds.
    pub fn lost_race(code: u16) -> bool {
        matches!(
            code,
            LOCK_WAIT_TIMEOUT | DEADLOCK | GR_ROLLBACK | TIDB_WRITE_CONFLICT
        )
    }
}

impl From<mysql::Error> for VotingError {
    fn from(e: mysql::Error) -> Self {
        match &e {
            mysql::Error::MySqlError(se) => match se.code {
                // Server-side errors that are not about connectivity are bugs or
                // races the caller did not map: report them as internal.
                1040 | 1042 | 1043 | 1044 | 1045 | 1049 | 1053 | 1077 | 1152 | 1153 | 1158
                | 1159 | 1160 | 1161 | 1927 | 4031 => {
                    VotingError::DatabaseUnavailable(format!("server error {}", se.code))
                }
                code if mysql_codes::lost_race(code) => {
                    VotingError::DatabaseUnavailable(format!("database busy (error {})", se.code))
                }
                _ => {
                    log::error!("unexpected database error: {e}");
                    VotingError::Internal(format!("database error {}", se.code))
                }
            },
            // A connection that broke mid-packet surfaces as a codec error
            // wrapping the I/O error (e.g. the database was killed).
            mysql::Error::IoError(_)
            | mysql::Error::CodecError(_)
            | mysql::Error::DriverError(_)
            | mysql::Error::TlsError(_)
            | mysql::Error::UrlError(_) => {
                log::warn!("database unavailable: {e}");
                VotingError::DatabaseUnavailable(e.to_string())
            }
            _ => {
                log::error!("unexpected database error: {e}");
                VotingError::Internal("database error".into())
            }
        }
    }
}

/// The MySQL server error number inside `e`, if it is a server error.
pub(crate) fn server_code(e: &mysql::Error) -> Option<u16> {
    match e {
        mysql::Error::MySqlError(se) => Some(se.code),
        _ => None,
    }
}
