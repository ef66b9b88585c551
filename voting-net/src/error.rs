//! The error type of the network layer.

use std::io;

use voting_core::ErrorCode;

use crate::protocol::WireError;

/// Everything that can go wrong talking to (or setting up) a server.
///
/// [`NetError::code`] gives the stable code: the server's own code for
/// [`NetError::Remote`], a client-side code (`connection_failed`, `tls_failed`,
/// `protocol_error`, `invalid_input`) otherwise.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The server refused the request (or closed the connection) and said why.
    #[error("{message}")]
    Remote {
        /// The server's stable code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
    /// The server could not be reached.
    #[error("cannot connect to {server}: {source}")]
    Connect {
        /// The address tried.
        server: String,
        /// Why.
        source: io::Error,
    },
    /// TLS could not be set up, or the server is not the one the CA vouches for.
    #[error("TLS: {0}")]
    Tls(String),
    /// The connection broke or timed out.
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    /// The server closed the connection.
    #[error("the server closed the connection")]
    Closed,
    /// The server sent something that is not valid protocol.
    #[error("the server sent an invalid message: {0}")]
    Protocol(String),
    /// A setting, file or argument is unusable (a CA file that can't be read, …).
    #[error("{0}")]
    Config(String),
}

impl NetError {
    /// The stable code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            NetError::Remote { code, .. } => *code,
            NetError::Connect { .. } | NetError::Io(_) | NetError::Closed => {
                ErrorCode::ConnectionFailed
            }
            NetError::Tls(_) => ErrorCode::TlsFailed,
            NetError::Protocol(_) => ErrorCode::ProtocolError,
            NetError::Config(_) => ErrorCode::InvalidInput,
        }
    }

    /// Whether the connection is still usable after this error (the server
    /// answered, and did not say it is closing).
    pub fn connection_survives(&self) -> bool {
        match self {
            NetError::Remote { code, .. } => !matches!(
                code,
                ErrorCode::IdleTimeout | ErrorCode::ServerBusy | ErrorCode::LineTooLong
            ),
            NetError::Config(_) => true,
            _ => false,
        }
    }

    /// Whether the request may have taken effect although it failed: the server
    /// said the database broke while committing (`outcome_unknown`), or the
    /// connection broke after the request was sent, before its answer. Check
    /// before repeating (for a vote: `eligibility`, or `verify` a receipt;
    /// repeating a cast is safe, it answers `already_voted` if the first counted).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            NetError::Remote { code, .. } => *code == ErrorCode::OutcomeUnknown,
            NetError::Io(_) | NetError::Closed | NetError::Protocol(_) => true,
            NetError::Connect { .. } | NetError::Tls(_) | NetError::Config(_) => false,
        }
    }
}

impl From<WireError> for NetError {
    fn from(e: WireError) -> Self {
        NetError::Remote {
            code: e.code,
            message: e.message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(code: ErrorCode) -> NetError {
        NetError::Remote {
            code,
            message: String::new(),
        }
    }

    #[test]
    fn only_a_cut_commit_or_a_lost_answer_leaves_the_outcome_unknown() {
        assert!(remote(ErrorCode::OutcomeUnknown).outcome_unknown());
        assert!(NetError::Closed.outcome_unknown());
        assert!(NetError::Io(io::ErrorKind::ConnectionReset.into()).outcome_unknown());
        for code in [
            ErrorCode::DatabaseUnavailable,
            ErrorCode::AlreadyVoted,
            ErrorCode::ServerBusy,
        ] {
            assert!(!remote(code).outcome_unknown(), "{code}");
        }
        let refused = NetError::Connect {
            server: "localhost:1".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(!refused.outcome_unknown());
    }
}
