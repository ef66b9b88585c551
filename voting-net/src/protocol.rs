//! The wire protocol: newline-delimited JSON messages, one request object per
//! line, one response per request, and server-pushed events.
//!
//! Every message is documented with examples in `docs/protocol.md`.
//!
//! ```text
//! → {"id":1,"op":"hello","version":1}
//! ← {"id":1,"ok":true,"result":{"version":1,"server":"voting 0.1.0","results":"live"}}
//! → {"id":2,"op":"cast","candidate":"C1"}
//! ← {"id":2,"ok":false,"error":{"code":"forbidden","message":"…"}}
//! ← {"event":"tally","tally":{…}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use voting_core::{
    Candidate, ElectionState, ErrorCode, NewVoter, ResultsPolicy, Role, Srn, Tally, VotingError,
};

/// The protocol version this crate speaks (sent in `hello`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the server accepts, in bytes (the newline excluded).
pub const MAX_REQUEST_LINE: usize = 64 * 1024;

/// Every operation a client can ask for, by its wire name.
///
/// The authorization rule of each is [`Op::access`]; the server checks it before
/// doing anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `hello`: protocol version handshake; must be the first request.
    Hello,
    /// `login_admin`: sign in as an administrator.
    LoginAdmin,
    /// `login_voter`: sign in as a voter.
    LoginVoter,
    /// `logout`: back to anonymous.
    Logout,
    /// `verify`: check a receipt (the receipt itself is the proof of access).
    Verify,
    /// `tally`: the current count.
    Tally,
    /// `subscribe`: receive a `tally` event after every change.
    Subscribe,
    /// `unsubscribe`: stop receiving tally events.
    Unsubscribe,
    /// `status`: the election's state and counts.
    Status,
    /// `candidates`: the candidates standing.
    Candidates,
    /// `eligibility`: may the signed-in voter vote now?
    Eligibility,
    /// `cast`: cast the signed-in voter's ballot.
    Cast,
    /// `voter_add`: put a voter on the roll.
    VoterAdd,
    /// `voter_remove`: take a voter who has not voted off the roll.
    VoterRemove,
    /// `voter_list`: the whole roll.
    VoterList,
    /// `voter_reset_credential`: issue a new credential to a voter.
    VoterResetCredential,
    /// `import_begin`: start a bulk import on this connection.
    ImportBegin,
    /// `import_rows`: add a chunk of voters to the pending import.
    ImportRows,
    /// `import_commit`: put the pending import on the roll (all or none).
    ImportCommit,
    /// `import_abort`: discard the pending import.
    ImportAbort,
    /// `candidate_add`: put a candidate on the ballot.
    CandidateAdd,
    /// `candidate_remove`: take a candidate off the ballot.
    CandidateRemove,
    /// `election_open`: start voting.
    ElectionOpen,
    /// `election_close`: end voting.
    ElectionClose,
    /// `audit`: read the audit log.
    Audit,
    /// `publication`: everything published about a closed election (ballot list,
    /// audit log, chain heads, tally), for anyone to recount.
    Publication,
}

/// Who may perform an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any connection, signed in or not.
    Anyone,
    /// Anyone to whom the server's [`ResultsPolicy`] shows the results now.
    ResultsViewers,
    /// A signed-in voter or admin.
    SignedIn,
    /// A signed-in voter only.
    Voter,
    /// A signed-in admin only.
    Admin,
}

impl Op {
    /// Every operation, in documentation order.
    pub const ALL: [Op; 26] = [
        Op::Hello,
        Op::LoginAdmin,
        Op::LoginVoter,
        Op::Logout,
        Op::Verify,
        Op::Tally,
        Op::Subscribe,
        Op::Unsubscribe,
        Op::Status,
        Op::Candidates,
        Op::Eligibility,
        Op::Cast,
        Op::VoterAdd,
        Op::VoterRemove,
        Op::VoterList,
        Op::VoterResetCredential,
        Op::ImportBegin,
        Op::ImportRows,
        Op::ImportCommit,
        Op::ImportAbort,
        Op::CandidateAdd,
        Op::CandidateRemove,
        Op::ElectionOpen,
        Op::ElectionClose,
        Op::Audit,
        Op::Publication,
    ];

    /// The wire name (`"op"` field).
    pub fn name(self) -> &'static str {
        match self {
            Op::Hello => "hello",
            Op::LoginAdmin => "login_admin",
            Op::LoginVoter => "login_voter",
            Op::Logout => "logout",
            Op::Verify => "verify",
            Op::Tally => "tally",
            Op::Subscribe => "subscribe",
            Op::Unsubscribe => "unsubscribe",
            Op::Status => "status",
            Op::Candidates => "candidates",
            Op::Eligibility => "eligibility",
            Op::Cast => "cast",
            Op::VoterAdd => "voter_add",
            Op::VoterRemove => "voter_remove",
            Op::VoterList => "voter_list",
            Op::VoterResetCredential => "voter_reset_credential",
            Op::ImportBegin => "import_begin",
            Op::ImportRows => "import_rows",
            Op::ImportCommit => "import_commit",
            Op::ImportAbort => "import_abort",
            Op::CandidateAdd => "candidate_add",
            Op::CandidateRemove => "candidate_remove",
            Op::ElectionOpen => "election_open",
            Op::ElectionClose => "election_close",
            Op::Audit => "audit",
            Op::Publication => "publication",
        }
    }

    /// Looks an operation up by its wire name.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// Who may perform it.
    ///
    /// `verify` is open to anyone on purpose: the receipt is a 140-bit bearer
    /// secret, and a voter checks it later from any machine without signing in.
    pub fn access(self) -> Access {
        match self {
            Op::Hello | Op::LoginAdmin | Op::LoginVoter | Op::Logout | Op::Verify => Access::Anyone,
            Op::Unsubscribe => Access::Anyone,
            Op::Tally | Op::Subscribe => Access::ResultsViewers,
            Op::Status | Op::Candidates => Access::SignedIn,
            Op::Eligibility | Op::Cast => Access::Voter,
            Op::VoterAdd
            | Op::VoterRemove
            | Op::VoterList
            | Op::VoterResetCredential
            | Op::ImportBegin
            | Op::ImportRows
            | Op::ImportCommit
            | Op::ImportAbort
            | Op::CandidateAdd
            | Op::CandidateRemove
            | Op::ElectionOpen
            | Op::ElectionClose
            | Op::Audit
            | Op::Publication => Access::Admin,
        }
    }

    /// Whether `role` may perform this operation while the election is in `state`
    /// under the results `policy`.
    pub fn allowed(self, role: Role, policy: ResultsPolicy, state: ElectionState) -> bool {
        match self.access() {
            Access::Anyone => true,
            Access::ResultsViewers => policy.visible_to(role, state),
            Access::SignedIn => role != Role::Anonymous,
            Access::Voter => role == Role::Voter,
            Access::Admin => role == Role::Admin,
        }
    }
}

/// A request, as sent by a client (the `id` travels next to these fields).
///
/// There is deliberately no `Debug`: two variants carry secrets.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Opens the conversation.
    Hello {
        /// The client's [`PROTOCOL_VERSION`].
        version: u32,
    },
    /// Signs in as an admin.
    LoginAdmin {
        /// Admin name.
        name: String,
        /// Password.
        password: String,
    },
    /// Signs in as a voter.
    LoginVoter {
        /// The voter's SRN.
        srn: String,
        /// The credential the voter was given (dashes and case don't matter).
        credential: String,
    },
    /// Signs out.
    Logout,
    /// Checks a receipt.
    Verify {
        /// The receipt code (dashes and case don't matter).
        receipt: String,
    },
    /// Reads the tally.
    Tally,
    /// Subscribes to tally events.
    Subscribe,
    /// Unsubscribes.
    Unsubscribe,
    /// Reads the election status.
    Status,
    /// Lists candidates.
    Candidates,
    /// The signed-in voter's eligibility.
    Eligibility,
    /// Casts the signed-in voter's ballot.
    Cast {
        /// The chosen candidate's SRN.
        candidate: String,
    },
    /// Adds a voter.
    VoterAdd {
        /// The voter.
        #[serde(flatten)]
        voter: NewVoter,
    },
    /// Removes a voter.
    VoterRemove {
        /// The voter's SRN.
        srn: Srn,
    },
    /// Lists the roll.
    VoterList,
    /// Issues a new credential.
    VoterResetCredential {
        /// The voter's SRN.
        srn: Srn,
    },
    /// Starts a bulk import.
    ImportBegin,
    /// Adds voters to the pending import.
    ImportRows {
        /// As many voters as fit in one line ([`MAX_REQUEST_LINE`]).
        voters: Vec<NewVoter>,
    },
    /// Commits the pending import.
    ImportCommit,
    /// Discards the pending import.
    ImportAbort,
    /// Adds a candidate.
    CandidateAdd {
        /// The candidate.
        #[serde(flatten)]
        candidate: Candidate,
    },
    /// Removes a candidate.
    CandidateRemove {
        /// The candidate's SRN.
        srn: Srn,
    },
    /// Opens the election.
    ElectionOpen,
    /// Closes the election.
    ElectionClose,
    /// Reads the audit log.
    Audit {
        /// Only lines after this id (default 0: from the start).
        #[serde(default)]
        after: u64,
        /// At most this many lines (default and cap: 10,000).
        #[serde(default)]
        limit: Option<u32>,
    },
    /// Reads the publication of a closed election.
    Publication,
}

impl Request {
    /// The operation this request performs.
    pub fn op(&self) -> Op {
        match self {
            Request::Hello { .. } => Op::Hello,
            Request::LoginAdmin { .. } => Op::LoginAdmin,
            Request::LoginVoter { .. } => Op::LoginVoter,
            Request::Logout => Op::Logout,
            Request::Verify { .. } => Op::Verify,
            Request::Tally => Op::Tally,
            Request::Subscribe => Op::Subscribe,
            Request::Unsubscribe => Op::Unsubscribe,
            Request::Status => Op::Status,
            Request::Candidates => Op::Candidates,
            Request::Eligibility => Op::Eligibility,
            Request::Cast { .. } => Op::Cast,
            Request::VoterAdd { .. } => Op::VoterAdd,
            Request::VoterRemove { .. } => Op::VoterRemove,
            Request::VoterList => Op::VoterList,
            Request::VoterResetCredential { .. } => Op::VoterResetCredential,
            Request::ImportBegin => Op::ImportBegin,
            Request::ImportRows { .. } => Op::ImportRows,
            Request::ImportCommit => Op::ImportCommit,
            Request::ImportAbort => Op::ImportAbort,
            Request::CandidateAdd { .. } => Op::CandidateAdd,
            Request::CandidateRemove { .. } => Op::CandidateRemove,
            Request::ElectionOpen => Op::ElectionOpen,
            Request::ElectionClose => Op::ElectionClose,
            Request::Audit { .. } => Op::Audit,
            Request::Publication => Op::Publication,
        }
    }

    /// The request as one line of JSON (without the newline), with its `id`.
    pub fn to_line(&self, id: u64) -> Vec<u8> {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.insert("id".into(), Value::from(id));
        }
        serde_json::to_vec(&value).unwrap_or_default()
    }
}

/// A request line the server could not accept, with the `id` when it had one.
#[derive(Debug)]
pub struct RejectedRequest {
    /// The request's `id`, if it could be read.
    pub id: Option<u64>,
    /// Why.
    pub error: WireError,
}

/// Decodes one request line: a JSON object with a numeric `id`, a known `op`
/// and that op's fields.
///
/// Errors: `malformed_request` (not JSON, not an object, no usable `id`, fields of
/// the wrong type), `unknown_op`, `invalid_input` (a field failed validation,
/// e.g. an SRN with a space).
pub fn decode_request(line: &[u8]) -> Result<(u64, Request), RejectedRequest> {
    let reject = |id, code, message: String| RejectedRequest {
        id,
        error: WireError { code, message },
    };
    let mut map: Map<String, Value> = match serde_json::from_slice(line) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(reject(
                None,
                ErrorCode::MalformedRequest,
                "a request is one JSON object per line".into(),
            ))
        }
        Err(e) => {
            return Err(reject(
                None,
                ErrorCode::MalformedRequest,
                format!("not valid JSON: {e}"),
            ))
        }
    };
    let id = match map.remove("id") {
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or_default(),
        _ => {
            return Err(reject(
                None,
                ErrorCode::MalformedRequest,
                "every request needs an \"id\": a non-negative integer".into(),
            ))
        }
    };
    let op_name = match map.get("op") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(reject(
                Some(id),
                ErrorCode::MalformedRequest,
                "every request needs an \"op\" string".into(),
            ))
        }
    };
    if Op::from_name(&op_name).is_none() {
        return Err(reject(
            Some(id),
            ErrorCode::UnknownOp,
            format!("unknown operation '{}'", truncate(&op_name, 64)),
        ));
    }
    match serde_json::from_value::<Request>(Value::Object(map)) {
        Ok(request) => Ok((id, request)),
        Err(e) => {
            let message = e.to_string();
            // Our domain types reject bad values with an `invalid input:` message;
            // everything else is a shape error.
            let code = if message.starts_with("invalid input") {
                ErrorCode::InvalidInput
            } else {
                ErrorCode::MalformedRequest
            };
            // serde quotes the offending value, which may be most of a 64 KiB line.
            Err(reject(
                Some(id),
                code,
                format!("{op_name}: {}", truncate(&message, 300)),
            ))
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// An error as it travels: the stable code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: String,
}

impl WireError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        WireError {
            code,
            message: message.into(),
        }
    }
}

impl From<&VotingError> for WireError {
    fn from(e: &VotingError) -> Self {
        WireError::new(e.code(), e.to_string())
    }
}

/// A response line: `{"id":N,"ok":true,"result":…}` or `{"id":N,"ok":false,"error":…}`.
///
/// `id` is `null` only when the request's id could not be read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// The request's id.
    pub id: Option<u64>,
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

/// A message the server sends without being asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The tally changed (sent to subscribers; the full tally every time).
    Tally {
        /// The new tally.
        tally: Tally,
    },
    /// Progress of an `import_commit` on this connection.
    ImportProgress {
        /// Credentials hashed so far.
        done: u64,
        /// Voters in the import.
        total: u64,
    },
    /// The server is closing this connection: idle too long (`idle_timeout`), at its
    /// connection limit or shutting down (`server_busy`). A line over the limit is
    /// answered with a `line_too_long` response instead, then the connection closes.
    Closing {
        /// Why.
        error: WireError,
    },
}

/// Result of `hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    /// The server's protocol version.
    pub version: u32,
    /// Server software and version.
    pub server: String,
    /// The server's results policy.
    pub results: ResultsPolicy,
}

/// Result of `login_admin` / `login_voter` / `logout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginReply {
    /// The connection's role now.
    pub role: Role,
    /// The admin's name or the voter's SRN (absent after logout).
    #[serde(default)]
    pub who: Option<String>,
}

/// Result of `voter_add` and `voter_reset_credential`, and one line of an import.
#[derive(Clone, Serialize, Deserialize)]
pub struct IssuedCredential {
    /// The voter.
    pub srn: Srn,
    /// The credential to hand to the voter, shown once.
    pub credential: String,
}

/// Result of `cast`.
#[derive(Clone, Serialize, Deserialize)]
pub struct CastReply {
    /// The receipt code: keep it to check the ballot later. Shown once.
    pub receipt: String,
    /// The ballot's position in the box.
    pub ballot_id: u64,
    /// The candidate the ballot counts for.
    pub candidate: Srn,
    /// The ballot's place in the ballot chain and the chain hash after it (absent
    /// only if sealing failed after the commit: the vote counts; `verify` gives it).
    #[serde(default)]
    pub seal: Option<voting_core::BallotSeal>,
}

/// Result of `eligibility`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityReply {
    /// What the voter may do now.
    pub eligibility: voting_core::Eligibility,
}

/// Result of `import_rows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRowsReply {
    /// Voters in the pending import so far.
    pub pending: u64,
}

/// Result of `import_commit`.
#[derive(Clone, Serialize, Deserialize)]
pub struct ImportReply {
    /// Every imported voter with their credential, in the order sent.
    pub imported: Vec<IssuedCredential>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_name_round_trips_and_is_a_request_tag() {
        for op in Op::ALL {
            assert_eq!(Op::from_name(op.name()), Some(op));
        }
        let unique: std::collections::HashSet<_> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(unique.len(), Op::ALL.len());
    }

    #[test]
    fn a_request_encodes_and_decodes_with_its_id() {
        let line = Request::Cast {
            candidate: "C1".into(),
        }
        .to_line(7);
        let (id, request) = decode_request(&line).expect("decodes");
        assert_eq!(id, 7);
        assert_eq!(request.op(), Op::Cast);
    }

    #[test]
    fn shape_errors_have_their_codes() {
        let code = |line: &str| decode_request(line.as_bytes()).err().map(|e| e.error.code);
        assert_eq!(code("nope"), Some(ErrorCode::MalformedRequest));
        assert_eq!(code("[1,2]"), Some(ErrorCode::MalformedRequest));
        assert_eq!(code(r#"{"op":"tally"}"#), Some(ErrorCode::MalformedRequest));
        assert_eq!(
            code(r#"{"id":-1,"op":"tally"}"#),
            Some(ErrorCode::MalformedRequest)
        );
        assert_eq!(code(r#"{"id":1,"op":"fly"}"#), Some(ErrorCode::UnknownOp));
        assert_eq!(
            code(r#"{"id":1,"op":"cast","candidate":5}"#),
            Some(ErrorCode::MalformedRequest)
        );
        assert_eq!(
            code(r#"{"id":1,"op":"voter_remove","srn":"has space"}"#),
            Some(ErrorCode::InvalidInput)
        );
        assert_eq!(code(r#"{"id":1,"op":"tally","extra":true}"#), None);
    }

    #[test]
    fn error_codes_round_trip_through_json() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).expect("serializes");
            let back: ErrorCode = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, code);
        }
        let future: ErrorCode = serde_json::from_str("\"from_the_future\"").expect("tolerated");
        assert_eq!(future, ErrorCode::Unknown);
    }
}
