//! One connection's conversation: reading requests, checking the caller's role,
//! calling `voting-core`, answering, and pushing tally events to subscribers.

use std::io;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;
use serde::Serialize;
use serde_json::Value;
use voting_core::{
    AdminSession, ElectionState, ErrorCode, NewVoter, Role, Secret, Srn, VoterSession, VotingError,
    AUDIT_PAGE_MAX, IMPORT_MAX_VOTERS,
};

use crate::protocol::{
    decode_request, Access, CastReply, EligibilityReply, Event, HelloReply, ImportReply,
    ImportRowsReply, IssuedCredential, LoginReply, Request, Response, WireError, PROTOCOL_VERSION,
};
use crate::server::Shared;
use crate::wire::{write_json_line, write_raw_line, LineReader, ReadLine};

/// How long a blocking read waits before the session re-checks its timers.
const TICK: Duration = Duration::from_secs(1);

/// Shortest gap between two `import_progress` events.
const PROGRESS_GAP: Duration = Duration::from_millis(100);

enum Who {
    Anonymous,
    Voter(VoterSession),
    Admin(AdminSession),
}

impl Who {
    fn role(&self) -> Role {
        match self {
            Who::Anonymous => Role::Anonymous,
            Who::Voter(_) => Role::Voter,
            Who::Admin(_) => Role::Admin,
        }
    }
}

struct Session<'a> {
    shared: &'a Shared,
    stream: SslStream<TcpStream>,
    reader: LineReader,
    greeted: bool,
    who: Who,
    /// The last tally sequence number pushed, while subscribed.
    subscribed: Option<u64>,
    import: Option<Vec<NewVoter>>,
    last_request: Instant,
    nonblocking: bool,
}

/// Serves one connection until it closes, times out or breaks.
pub(crate) fn run(stream: SslStream<TcpStream>, shared: &Shared) {
    let peer = stream.get_ref().peer_addr().ok();
    let mut session = Session {
        shared,
        reader: LineReader::new(shared.config.max_line),
        stream,
        greeted: false,
        who: Who::Anonymous,
        subscribed: None,
        import: None,
        last_request: Instant::now(),
        nonblocking: false,
    };
    log::debug!("connection from {peer:?}");
    if let Err(e) = session.serve() {
        log::debug!("connection from {peer:?} ended: {e}");
    }
    if session.subscribed.is_some() {
        shared.hub.unsubscribe();
    }
    let _ = session.set_nonblocking(false);
    crate::wire::close_gracefully(session.stream, LINGER);
}

/// How long a closing connection keeps reading (and discarding) so that the
/// client gets to read the reason it was closed.
const LINGER: Duration = Duration::from_secs(1);

impl Session<'_> {
    fn serve(&mut self) -> io::Result<()> {
        let config = &self.shared.config;
        self.stream.get_ref().set_read_timeout(Some(TICK))?;
        self.stream
            .get_ref()
            .set_write_timeout(Some(config.write_timeout))?;
        loop {
            if self.shared.shutdown.load(Ordering::SeqCst) {
                return self.close(ErrorCode::ServerBusy, "the server is shutting down");
            }
            if let Some(seen) = self.subscribed {
                if !self.reader.has_line() {
                    if let Some(p) = self.shared.hub.wait_newer(seen, config.push_interval) {
                        self.subscribed = Some(p.seq);
                        if self.results_visible(p.state) {
                            self.set_nonblocking(false)?;
                            write_raw_line(&mut self.stream, &p.line)?;
                        }
                    }
                }
                self.set_nonblocking(true)?;
            } else {
                self.set_nonblocking(false)?;
            }
            let read = if self.subscribed.is_none() && !self.bytes_waiting()? {
                ReadLine::Pending
            } else {
                self.reader.read_line(&mut self.stream)?
            };
            match read {
                ReadLine::Line(line) => {
                    self.last_request = Instant::now();
                    self.set_nonblocking(false)?;
                    self.handle_line(&line)?;
                }
                ReadLine::Pending => {
                    let limit = match self.who {
                        Who::Anonymous => config.idle_timeout_anonymous,
                        _ => config.idle_timeout_signed_in,
                    };
                    if self.subscribed.is_none() && self.last_request.elapsed() > limit {
                        return self.close(
                            ErrorCode::IdleTimeout,
                            &format!("no request for {} s: closing", limit.as_secs()),
                        );
                    }
                }
                ReadLine::Eof => return Ok(()),
                ReadLine::TooLong => {
                    self.set_nonblocking(false)?;
                    let error = WireError::new(
                        ErrorCode::LineTooLong,
                        format!(
                            "a request line may not exceed {} bytes: closing",
                            config.max_line
                        ),
                    );
                    self.respond(None, Err(error))?;
                    return Ok(());
                }
            }
        }
    }

    /// Whether there is anything to read: a buffered line, TLS plaintext, or
    /// bytes on the socket (waiting up to the read timeout for them). An idle
    /// connection thus waits in `peek`, outside `SSL_read`, and OpenSSL gives
    /// its read buffer back meanwhile (`SslMode::RELEASE_BUFFERS`): ≈ 17 KiB per
    /// idle connection.
    fn bytes_waiting(&mut self) -> io::Result<bool> {
        if self.reader.has_line() || self.stream.ssl().pending() > 0 {
            return Ok(true);
        }
        match self.stream.get_ref().peek(&mut [0u8; 1]) {
            Ok(_) => Ok(true), // bytes, or the end of the stream: read_line sees which
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn set_nonblocking(&mut self, on: bool) -> io::Result<()> {
        if self.nonblocking != on {
            self.stream.get_ref().set_nonblocking(on)?;
            self.nonblocking = on;
        }
        Ok(())
    }

    fn close(&mut self, code: ErrorCode, message: &str) -> io::Result<()> {
        self.set_nonblocking(false)?;
        let event = Event::Closing {
            error: WireError::new(code, message),
        };
        write_json_line(&mut self.stream, &event)
    }

    fn results_visible(&self, state: ElectionState) -> bool {
        self.shared
            .config
            .results
            .visible_to(self.who.role(), state)
    }

    fn respond(&mut self, id: Option<u64>, outcome: Result<Value, WireError>) -> io::Result<()> {
        let response = match outcome {
            Ok(result) => Response {
                id,
                ok: true,
                result: Some(result),
                error: None,
            },
            Err(error) => Response {
                id,
                ok: false,
                result: None,
                error: Some(error),
            },
        };
        write_json_line(&mut self.stream, &response)
    }

    fn handle_line(&mut self, line: &[u8]) -> io::Result<()> {
        let (id, request) = match decode_request(line) {
            Ok(decoded) => decoded,
            Err(rejected) => return self.respond(rejected.id, Err(rejected.error)),
        };
        let op = request.op();
        log::trace!("request {id}: {}", op.name());
        let outcome = if !self.greeted && op != crate::Op::Hello {
            Err(WireError::new(
                ErrorCode::MalformedRequest,
                "the first request must be hello (with the protocol version)",
            ))
        } else {
            match self.authorize(op) {
                Ok(()) => self.perform(request),
                Err(e) => Err(e),
            }
        };
        self.respond(Some(id), outcome)
    }

    /// The role check of [`crate::Op::access`], with a message saying what would help.
    fn authorize(&self, op: crate::Op) -> Result<(), WireError> {
        let role = self.who.role();
        let state = match op.access() {
            Access::ResultsViewers => self.shared.store.election_state().map_err(wire)?,
            _ => ElectionState::Setup,
        };
        if op.allowed(role, self.shared.config.results, state) {
            return Ok(());
        }
        let message = match (op.access(), role) {
            (Access::ResultsViewers, _) => {
                "results are published when the election closes".to_string()
            }
            (_, Role::Anonymous) => format!("sign in first to use {}", op.name()),
            (Access::Voter, _) => format!("only a signed-in voter may use {}", op.name()),
            _ => format!("only an admin may use {}", op.name()),
        };
        Err(WireError::new(ErrorCode::Forbidden, message))
    }

    fn perform(&mut self, request: Request) -> Result<Value, WireError> {
        let store = &*self.shared.store;
        let changed = matches!(
            request.op(),
            crate::Op::Cast
                | crate::Op::VoterAdd
                | crate::Op::VoterRemove
                | crate::Op::ImportCommit
                | crate::Op::CandidateAdd
                | crate::Op::CandidateRemove
                | crate::Op::ElectionOpen
                | crate::Op::ElectionClose
        );
        let result = match request {
            Request::Hello { version } => {
                if version != PROTOCOL_VERSION {
                    return Err(WireError::new(
                        ErrorCode::UnsupportedVersion,
                        format!(
                            "this server speaks protocol version {PROTOCOL_VERSION}, not {version}"
                        ),
                    ));
                }
                self.greeted = true;
                json(HelloReply {
                    version: PROTOCOL_VERSION,
                    server: concat!("voting ", env!("CARGO_PKG_VERSION")).into(),
                    results: self.shared.config.results,
                })
            }
            Request::LoginAdmin { name, password } => {
                let admin = store
                    .authenticate_admin(&name, &Secret::new(password))
                    .map_err(wire)?;
                log::info!("admin {} signed in", admin.name());
                let who = admin.name().to_string();
                self.sign_in(Who::Admin(admin));
                json(LoginReply {
                    role: Role::Admin,
                    who: Some(who),
                })
            }
            Request::LoginVoter { srn, credential } => {
                let voter = store
                    .authenticate_voter(&srn, &Secret::new(credential))
                    .map_err(wire)?;
                let who = voter.srn().to_string();
                self.sign_in(Who::Voter(voter));
                json(LoginReply {
                    role: Role::Voter,
                    who: Some(who),
                })
            }
            Request::Logout => {
                self.sign_in(Who::Anonymous);
                json(LoginReply {
                    role: Role::Anonymous,
                    who: None,
                })
            }
            Request::Verify { receipt } => json(store.verify_receipt(&receipt).map_err(wire)?),
            Request::Tally => json(store.tally().map_err(wire)?),
            Request::Subscribe => {
                if self.subscribed.is_none() {
                    self.subscribed = Some(self.shared.hub.subscribe());
                }
                json(store.tally().map_err(wire)?)
            }
            Request::Unsubscribe => {
                if self.subscribed.take().is_some() {
                    self.shared.hub.unsubscribe();
                }
                json(serde_json::json!({}))
            }
            Request::Status => json(store.election_status().map_err(wire)?),
            Request::Candidates => json(store.list_candidates().map_err(wire)?),
            Request::Eligibility => {
                let voter = self.voter()?;
                json(EligibilityReply {
                    eligibility: store.eligibility(voter).map_err(wire)?,
                })
            }
            Request::Cast { candidate } => {
                let voter = self.voter()?;
                let candidate = Srn::parse(&candidate)
                    .map_err(|_| wire(VotingError::UnknownCandidate(truncated(&candidate))))?;
                let receipt = store.cast_vote(voter, &candidate).map_err(wire)?;
                json(CastReply {
                    receipt: receipt.receipt.expose().to_string(),
                    ballot_id: receipt.ballot_id,
                    candidate: receipt.candidate,
                    seal: receipt.seal,
                })
            }
            Request::VoterAdd { voter } => {
                let credential = store.add_voter(self.admin()?, &voter).map_err(wire)?;
                json(IssuedCredential {
                    srn: voter.srn,
                    credential: credential.expose().to_string(),
                })
            }
            Request::VoterRemove { srn } => {
                store.remove_voter(self.admin()?, &srn).map_err(wire)?;
                json(serde_json::json!({ "srn": srn }))
            }
            Request::VoterList => json(store.list_voters(self.admin()?).map_err(wire)?),
            Request::VoterResetCredential { srn } => {
                let credential = store.reset_credential(self.admin()?, &srn).map_err(wire)?;
                json(IssuedCredential {
                    srn,
                    credential: credential.expose().to_string(),
                })
            }
            Request::ImportBegin => {
                self.import = Some(Vec::new());
                json(ImportRowsReply { pending: 0 })
            }
            Request::ImportRows { voters } => {
                let pending = self.import.as_mut().ok_or_else(no_import)?;
                if pending.len() + voters.len() > IMPORT_MAX_VOTERS {
                    self.import = None;
                    return Err(WireError::new(
                        ErrorCode::InvalidInput,
                        format!(
                            "an import holds at most {IMPORT_MAX_VOTERS} voters; import discarded"
                        ),
                    ));
                }
                pending.extend(voters);
                json(ImportRowsReply {
                    pending: pending.len() as u64,
                })
            }
            Request::ImportCommit => {
                let voters = self.import.take().ok_or_else(no_import)?;
                let imported = self.commit_import(&voters)?;
                json(ImportReply { imported })
            }
            Request::ImportAbort => {
                self.import = None;
                json(serde_json::json!({}))
            }
            Request::CandidateAdd { candidate } => {
                let added = store
                    .add_candidate(self.admin()?, &candidate)
                    .map_err(wire)?;
                json(&added)
            }
            Request::CandidateRemove { srn } => {
                store.remove_candidate(self.admin()?, &srn).map_err(wire)?;
                json(serde_json::json!({ "srn": srn }))
            }
            Request::ElectionOpen => json(store.open_election(self.admin()?).map_err(wire)?),
            Request::ElectionClose => json(store.close_election(self.admin()?).map_err(wire)?),
            Request::Publication => json(store.publication(self.admin()?).map_err(wire)?),
            Request::Audit { after, limit } => {
                let limit = limit.unwrap_or(AUDIT_PAGE_MAX);
                json(store.audit_log(self.admin()?, after, limit).map_err(wire)?)
            }
        };
        if changed {
            self.shared.hub.poke();
        }
        result
    }

    fn sign_in(&mut self, who: Who) {
        self.who = who;
        self.import = None;
    }

    fn voter(&self) -> Result<&VoterSession, WireError> {
        match &self.who {
            Who::Voter(v) => Ok(v),
            _ => Err(WireError::new(
                ErrorCode::Forbidden,
                "sign in as a voter first",
            )),
        }
    }

    fn admin(&self) -> Result<&AdminSession, WireError> {
        match &self.who {
            Who::Admin(a) => Ok(a),
            _ => Err(WireError::new(
                ErrorCode::Forbidden,
                "sign in as an admin first",
            )),
        }
    }

    /// Runs the import, sending `import_progress` events while credentials hash.
    fn commit_import(&mut self, voters: &[NewVoter]) -> Result<Vec<IssuedCredential>, WireError> {
        let Who::Admin(admin) = &self.who else {
            return Err(WireError::new(
                ErrorCode::Forbidden,
                "sign in as an admin first",
            ));
        };
        let stream = &mut self.stream;
        let mut last_event = Instant::now() - PROGRESS_GAP;
        let mut report = |done: usize, total: usize| {
            if done < total && last_event.elapsed() < PROGRESS_GAP {
                return;
            }
            last_event = Instant::now();
            let event = Event::ImportProgress {
                done: done as u64,
                total: total as u64,
            };
            // A client that went away loses only the progress; the import
            // itself is all-or-none either way.
            let _ = write_json_line(stream, &event);
        };
        let imported = self
            .shared
            .store
            .import_voters(admin, voters, &mut report)
            .map_err(wire)?;
        log::info!("admin {} imported {} voters", admin.name(), imported.len());
        Ok(imported
            .into_iter()
            .map(|v| IssuedCredential {
                srn: v.srn,
                credential: v.credential.expose().to_string(),
            })
            .collect())
    }
}

fn no_import() -> WireError {
    WireError::new(
        ErrorCode::WrongState,
        "no import in progress: send import_begin first",
    )
}

fn truncated(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Turns a library error into its wire form; unexpected failures are logged in
/// full here and reported without internals.
fn wire(e: VotingError) -> WireError {
    match e.code() {
        ErrorCode::Internal => {
            log::error!("{e}");
            WireError::new(
                ErrorCode::Internal,
                "internal error (details are in the server log)",
            )
        }
        ErrorCode::DatabaseUnavailable | ErrorCode::OutcomeUnknown => {
            log::warn!("{e}");
            WireError::from(&e)
        }
        _ => WireError::from(&e),
    }
}

fn json<T: Serialize>(value: T) -> Result<Value, WireError> {
    serde_json::to_value(value).map_err(|e| {
        WireError::new(
            ErrorCode::Internal,
            format!("cannot encode the result: {e}"),
        )
    })
}
