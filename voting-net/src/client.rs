//! The blocking client: one TLS connection, typed methods for every operation,
//! and an iterator of pushed tally events.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use native_tls::{Certificate, HandshakeError, Protocol, TlsConnector, TlsStream};
use serde::de::DeserializeOwned;
use serde_json::Value;
use voting_core::{
    AuditEntry, Candidate, CastReceipt, ElectionStatus, Eligibility, ImportedVoter, NewVoter,
    ReceiptCheck, Secret, Srn, Tally, Voter,
};

use crate::error::NetError;
use crate::protocol::{
    CastReply, EligibilityReply, Event, HelloReply, ImportReply, ImportRowsReply, IssuedCredential,
    LoginReply, Request, Response, MAX_REQUEST_LINE, PROTOCOL_VERSION,
};
use crate::wire::{write_raw_line, LineReader, ReadLine};

/// Longest line the client accepts from a server (a 200,000-voter import result
/// or a roll listing is a few tens of MiB).
const MAX_RESPONSE_LINE: usize = 256 * 1024 * 1024;

/// Budget per `import_rows` line, leaving room for the envelope.
const IMPORT_LINE_BUDGET: usize = MAX_REQUEST_LINE - 1024;

/// How to reach and trust a server.
#[derive(Clone)]
pub struct ClientConfig {
    ca_pem: Vec<u8>,
    /// Time allowed to connect and complete the TLS handshake. Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for the server to answer a request. Default 60 s (an import's
    /// progress events count as answers).
    pub response_timeout: Duration,
}

impl ClientConfig {
    /// Trusts exactly the CA certificate(s) in the PEM file at `path` (the
    /// system's root store is *not* used).
    pub fn from_ca_file(path: impl AsRef<Path>) -> Result<Self, NetError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| {
            NetError::Config(format!("cannot read the CA file {}: {e}", path.display()))
        })?;
        Ok(Self::from_ca_pem(pem))
    }

    /// Trusts exactly the CA certificate(s) in `pem`.
    pub fn from_ca_pem(pem: impl Into<Vec<u8>>) -> Self {
        ClientConfig {
            ca_pem: pem.into(),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
        }
    }

    fn connector(&self) -> Result<TlsConnector, NetError> {
        let text = String::from_utf8_lossy(&self.ca_pem);
        const END: &str = "-----END CERTIFICATE-----";
        let mut builder = TlsConnector::builder();
        builder
            .disable_built_in_roots(true)
            .min_protocol_version(Some(Protocol::Tlsv12));
        let mut found = 0;
        for block in text.split_inclusive(END).filter(|b| b.contains(END)) {
            let cert = Certificate::from_pem(block.trim().as_bytes()).map_err(|e| {
                NetError::Config(format!("the CA file holds a bad certificate: {e}"))
            })?;
            builder.add_root_certificate(cert);
            found += 1;
        }
        if found == 0 {
            return Err(NetError::Config(
                "the CA file holds no PEM certificate".into(),
            ));
        }
        builder
            .build()
            .map_err(|e| NetError::Tls(format!("cannot set up TLS: {e}")))
    }
}

/// Which part of an import a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportStage {
    /// Sending the rows to the server.
    Uploading,
    /// The server is generating and hashing credentials.
    Hashing,
}

/// A connection to a voting server.
///
/// Requests are answered in order; tally events that arrive meanwhile are kept
/// for [`Client::next_event`] / [`Client::tally_updates`].
pub struct Client {
    stream: TlsStream<TcpStream>,
    reader: LineReader,
    next_id: u64,
    events: VecDeque<Event>,
    hello: HelloReply,
    response_timeout: Duration,
}

impl Client {
    /// Connects to `server` (`host:port`), verifies its certificate against the
    /// configured CA and host name, and says hello.
    ///
    /// Errors: `connection_failed`, `tls_failed`, `unsupported_version`,
    /// `server_busy`.
    pub fn connect(server: &str, config: &ClientConfig) -> Result<Client, NetError> {
        let (host, port) = split_host_port(server)?;
        let connector = config.connector()?;
        let tcp = connect_tcp(server, &host, port, config.connect_timeout)?;
        tcp.set_read_timeout(Some(config.connect_timeout))?;
        tcp.set_write_timeout(Some(config.connect_timeout))?;
        let _ = tcp.set_nodelay(true);
        let stream = connector.connect(&host, tcp).map_err(|e| match e {
            HandshakeError::Failure(e) => NetError::Tls(format!(
                "{server} could not be verified against the CA file, or refused TLS: {e}"
            )),
            HandshakeError::WouldBlock(_) => NetError::Tls(format!(
                "{server} did not complete the TLS handshake in time"
            )),
        })?;
        let mut client = Client {
            stream,
            reader: LineReader::new(MAX_RESPONSE_LINE),
            next_id: 1,
            events: VecDeque::new(),
            hello: HelloReply {
                version: 0,
                server: String::new(),
                results: Default::default(),
            },
            response_timeout: config.response_timeout,
        };
        client
            .stream
            .get_ref()
            .set_write_timeout(Some(config.response_timeout))?;
        client.hello = client.call(&Request::Hello {
            version: PROTOCOL_VERSION,
        })?;
        Ok(client)
    }

    /// What the server said in `hello` (its version and results policy).
    pub fn server_info(&self) -> &HelloReply {
        &self.hello
    }

    /// Sends any request and returns the raw `result` (for tools that speak the
    /// protocol generically; the typed methods below are usually nicer).
    pub fn request(&mut self, request: &Request) -> Result<Value, NetError> {
        self.exchange(request, &mut |_, _| {})
    }

    fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, NetError> {
        let value = self.request(request)?;
        serde_json::from_value(value).map_err(|e| {
            NetError::Protocol(format!(
                "unexpected result for {}: {e}",
                request.op().name()
            ))
        })
    }

    fn exchange(
        &mut self,
        request: &Request,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Value, NetError> {
        let id = self.next_id;
        self.next_id += 1;
        if let Err(e) = write_raw_line(&mut self.stream, &request.to_line(id)) {
            // The server may have closed the connection and said why first.
            return Err(self.closing_reason().unwrap_or(NetError::Io(e)));
        }
        let mut deadline = Instant::now() + self.response_timeout;
        loop {
            let Some(line) = self.read_line(Some(deadline))? else {
                return Err(NetError::Io(io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "no answer to {} within {} s",
                        request.op().name(),
                        self.response_timeout.as_secs()
                    ),
                )));
            };
            match decode_incoming(&line)? {
                Incoming::Event(Event::Closing { error }) => return Err(error.into()),
                Incoming::Event(Event::ImportProgress { done, total }) => {
                    deadline = Instant::now() + self.response_timeout;
                    progress(done, total);
                }
                Incoming::Event(event) => self.events.push_back(event),
                Incoming::Ignored => {}
                Incoming::Response(r) if r.id == Some(id) || r.id.is_none() => {
                    return match (r.ok, r.result, r.error) {
                        (true, result, _) => Ok(result.unwrap_or(Value::Null)),
                        (false, _, Some(error)) => Err(error.into()),
                        (false, _, None) => Err(NetError::Protocol(
                            "an error response without an error".into(),
                        )),
                    };
                }
                Incoming::Response(r) => {
                    log::debug!("ignoring a response to request {:?}", r.id);
                }
            }
        }
    }

    /// A `closing` event already sent by the server, if any.
    fn closing_reason(&mut self) -> Option<NetError> {
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Ok(Some(line)) = self.read_line(Some(deadline)) {
            if let Ok(Incoming::Event(Event::Closing { error })) = decode_incoming(&line) {
                return Some(error.into());
            }
        }
        None
    }

    /// Reads one line, waiting until `deadline` (forever if `None`).
    fn read_line(&mut self, deadline: Option<Instant>) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            let wait = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Ok(None),
                },
                None => Some(Duration::from_secs(3600)),
            };
            self.stream.get_ref().set_read_timeout(wait)?;
            match self.reader.read_line(&mut self.stream)? {
                ReadLine::Line(line) => return Ok(Some(line)),
                ReadLine::Pending => continue,
                ReadLine::Eof => return Err(NetError::Closed),
                ReadLine::TooLong => {
                    return Err(NetError::Protocol(
                        "a line from the server is too long".into(),
                    ))
                }
            }
        }
    }

    /// The next pushed event, waiting up to `timeout` (`None`: forever).
    /// Returns `Ok(None)` when the time runs out.
    pub fn next_event(&mut self, timeout: Option<Duration>) -> Result<Option<Event>, NetError> {
        if let Some(event) = self.events.pop_front() {
            return Ok(Some(event));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let Some(line) = self.read_line(deadline)? else {
                return Ok(None);
            };
            match decode_incoming(&line)? {
                Incoming::Event(event) => return Ok(Some(event)),
                Incoming::Response(_) | Incoming::Ignored => continue,
            }
        }
    }

    /// Every tally the server pushes from now on (after [`Client::subscribe`]),
    /// blocking for each. Ends after an error.
    pub fn tally_updates(&mut self) -> TallyUpdates<'_> {
        TallyUpdates {
            client: self,
            done: false,
        }
    }

    /// Signs in as an admin. Errors: `bad_credentials`, `locked_out`.
    pub fn login_admin(&mut self, name: &str, password: &Secret) -> Result<LoginReply, NetError> {
        self.call(&Request::LoginAdmin {
            name: name.to_string(),
            password: password.expose().to_string(),
        })
    }

    /// Signs in as a voter. Errors: `bad_credentials`, `locked_out`.
    pub fn login_voter(&mut self, srn: &str, credential: &Secret) -> Result<LoginReply, NetError> {
        self.call(&Request::LoginVoter {
            srn: srn.to_string(),
            credential: credential.expose().to_string(),
        })
    }

    /// Signs out (the connection stays open, anonymous).
    pub fn logout(&mut self) -> Result<LoginReply, NetError> {
        self.call(&Request::Logout)
    }

    /// Checks a receipt: is the ballot counted, for whom, where in the ballot
    /// chain, and is the whole chain intact ([`ReceiptCheck::chain`]). Errors:
    /// `not_found`.
    pub fn verify(&mut self, receipt: &str) -> Result<ReceiptCheck, NetError> {
        self.call(&Request::Verify {
            receipt: receipt.to_string(),
        })
    }

    /// Everything published about a closed election — tally, ballot list, audit
    /// log, chain heads — to save and recount with [`voting_core::integrity::recount`].
    /// Admins only. Errors: `wrong_state` until the election is closed.
    pub fn publication(&mut self) -> Result<voting_core::Publication, NetError> {
        self.call(&Request::Publication)
    }

    /// The current tally. Errors: `forbidden` (results not yet public).
    pub fn tally(&mut self) -> Result<Tally, NetError> {
        self.call(&Request::Tally)
    }

    /// Subscribes to tally events and returns the current tally.
    pub fn subscribe(&mut self) -> Result<Tally, NetError> {
        self.call(&Request::Subscribe)
    }

    /// Stops tally events (some may already be queued).
    pub fn unsubscribe(&mut self) -> Result<(), NetError> {
        self.request(&Request::Unsubscribe).map(drop)
    }

    /// The election's state and counts (signed in).
    pub fn status(&mut self) -> Result<ElectionStatus, NetError> {
        self.call(&Request::Status)
    }

    /// The candidates standing (signed in).
    pub fn candidates(&mut self) -> Result<Vec<Candidate>, NetError> {
        self.call(&Request::Candidates)
    }

    /// Whether the signed-in voter may vote now.
    pub fn eligibility(&mut self) -> Result<Eligibility, NetError> {
        Ok(self
            .call::<EligibilityReply>(&Request::Eligibility)?
            .eligibility)
    }

    /// Casts the signed-in voter's ballot. Errors: `already_voted`,
    /// `unknown_candidate`, `election_not_open`, `not_eligible`.
    pub fn cast(&mut self, candidate: &Srn) -> Result<CastReceipt, NetError> {
        let reply: CastReply = self.call(&Request::Cast {
            candidate: candidate.to_string(),
        })?;
        Ok(CastReceipt {
            receipt: Secret::new(reply.receipt),
            ballot_id: reply.ballot_id,
            candidate: reply.candidate,
            seal: reply.seal,
        })
    }

    /// Puts a voter on the roll; returns the credential to hand them (once).
    pub fn add_voter(&mut self, voter: &NewVoter) -> Result<Secret, NetError> {
        let issued: IssuedCredential = self.call(&Request::VoterAdd {
            voter: voter.clone(),
        })?;
        Ok(Secret::new(issued.credential))
    }

    /// Takes a voter who has not voted off the roll.
    pub fn remove_voter(&mut self, srn: &Srn) -> Result<(), NetError> {
        self.request(&Request::VoterRemove { srn: srn.clone() })
            .map(drop)
    }

    /// The whole roll, ordered by SRN.
    pub fn voters(&mut self) -> Result<Vec<Voter>, NetError> {
        self.call(&Request::VoterList)
    }

    /// Issues a new credential (the old one stops working); returns it.
    pub fn reset_credential(&mut self, srn: &Srn) -> Result<Secret, NetError> {
        let issued: IssuedCredential =
            self.call(&Request::VoterResetCredential { srn: srn.clone() })?;
        Ok(Secret::new(issued.credential))
    }

    /// Puts many voters on the roll, all or none, reporting
    /// `progress(stage, done, total)`. Returns each voter's credential.
    pub fn import_voters(
        &mut self,
        voters: &[NewVoter],
        progress: &mut dyn FnMut(ImportStage, u64, u64),
    ) -> Result<Vec<ImportedVoter>, NetError> {
        let total = voters.len() as u64;
        self.request(&Request::ImportBegin)?;
        let outcome = self.upload_and_commit(voters, total, progress);
        if outcome.as_ref().is_err_and(NetError::connection_survives) {
            let _ = self.request(&Request::ImportAbort);
        }
        let reply: ImportReply = serde_json::from_value(outcome?)
            .map_err(|e| NetError::Protocol(format!("unexpected import result: {e}")))?;
        Ok(reply
            .imported
            .into_iter()
            .map(|v| ImportedVoter {
                srn: v.srn,
                credential: Secret::new(v.credential),
            })
            .collect())
    }

    fn upload_and_commit(
        &mut self,
        voters: &[NewVoter],
        total: u64,
        progress: &mut dyn FnMut(ImportStage, u64, u64),
    ) -> Result<Value, NetError> {
        let mut chunk: Vec<NewVoter> = Vec::new();
        let mut size = 0;
        let mut sent = 0u64;
        for voter in voters {
            let len = serde_json::to_vec(voter).map_or(0, |v| v.len()) + 1;
            if !chunk.is_empty() && size + len > IMPORT_LINE_BUDGET {
                sent += chunk.len() as u64;
                let reply: ImportRowsReply = self.call(&Request::ImportRows {
                    voters: std::mem::take(&mut chunk),
                })?;
                debug_assert_eq!(reply.pending, sent);
                progress(ImportStage::Uploading, sent, total);
                size = 0;
            }
            size += len;
            chunk.push(voter.clone());
        }
        if !chunk.is_empty() {
            self.request(&Request::ImportRows { voters: chunk })?;
            progress(ImportStage::Uploading, total, total);
        }
        self.exchange(&Request::ImportCommit, &mut |done, total| {
            progress(ImportStage::Hashing, done, total)
        })
    }

    /// Puts a candidate on the ballot (setup only).
    pub fn add_candidate(&mut self, candidate: &Candidate) -> Result<(), NetError> {
        self.request(&Request::CandidateAdd {
            candidate: candidate.clone(),
        })
        .map(drop)
    }

    /// Takes a candidate off the ballot (setup only).
    pub fn remove_candidate(&mut self, srn: &Srn) -> Result<(), NetError> {
        self.request(&Request::CandidateRemove { srn: srn.clone() })
            .map(drop)
    }

    /// Opens the election (needs at least one candidate).
    pub fn open_election(&mut self) -> Result<ElectionStatus, NetError> {
        self.call(&Request::ElectionOpen)
    }

    /// Closes the election.
    pub fn close_election(&mut self) -> Result<ElectionStatus, NetError> {
        self.call(&Request::ElectionClose)
    }

    /// Audit lines after `after` (0: from the start), at most `limit`.
    pub fn audit_log(
        &mut self,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Vec<AuditEntry>, NetError> {
        self.call(&Request::Audit { after, limit })
    }
}

/// Iterator returned by [`Client::tally_updates`].
pub struct TallyUpdates<'a> {
    client: &'a mut Client,
    done: bool,
}

impl Iterator for TallyUpdates<'_> {
    type Item = Result<Tally, NetError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            match self.client.next_event(None) {
                Ok(Some(Event::Tally { tally })) => return Some(Ok(tally)),
                Ok(Some(Event::Closing { error })) => {
                    self.done = true;
                    return Some(Err(error.into()));
                }
                Ok(_) => continue,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        None
    }
}

enum Incoming {
    Response(Response),
    Event(Event),
    /// An event kind this version does not know (from a newer server).
    Ignored,
}

fn decode_incoming(line: &[u8]) -> Result<Incoming, NetError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| NetError::Protocol(format!("not JSON: {e}")))?;
    if value.get("event").is_some() {
        return Ok(serde_json::from_value(value).map_or(Incoming::Ignored, Incoming::Event));
    }
    serde_json::from_value(value)
        .map(Incoming::Response)
        .map_err(|e| NetError::Protocol(format!("not a response: {e}")))
}

/// Splits `host:port`, `[v6]:port`; the port is required.
fn split_host_port(server: &str) -> Result<(String, u16), NetError> {
    let bad = || NetError::Config(format!("'{server}' is not HOST:PORT"));
    let (host, port) = server.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn connect_tcp(
    server: &str,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, NetError> {
    let failed = |source| NetError::Connect {
        server: server.to_string(),
        source,
    };
    let addrs = (host, port).to_socket_addrs().map_err(failed)?;
    let mut last = io::Error::new(ErrorKind::NotFound, "no address found");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(failed(last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_are_split_for_names_and_addresses() {
        assert_eq!(
            split_host_port("localhost:7443").ok(),
            Some(("localhost".into(), 7443))
        );
        assert_eq!(
            split_host_port("[::1]:7443").ok(),
            Some(("::1".into(), 7443))
        );
        for bad in ["localhost", ":7443", "host:port", "host:70000"] {
            assert!(split_host_port(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_clearly() {
        let err = ClientConfig::from_ca_pem(b"hello".to_vec())
            .connector()
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("the CA file holds no PEM certificate"));
    }
}
