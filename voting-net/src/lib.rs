//! # voting-net
//!
//! The voting protocol over TLS: a [`Server`] that puts a [`voting_core::Store`]
//! on the network, and a blocking [`Client`] for programs that talk to it.
//!
//! - **Protocol** ([`protocol`]): newline-delimited JSON, one request per line
//!   with an `id`, one response per request, plus pushed [`Event`]s (live
//!   tallies). Every message is described in `docs/protocol.md`.
//! - **Server**: TLS only (1.2+), one thread per connection (the handshake runs
//!   in that thread, never in the accept loop), bounded everywhere: connections,
//!   line length, idle time, concurrent credential checks, database pool. The
//!   role of each connection is checked on every request ([`Op::access`]). It
//!   keeps no state another instance would need, so several servers can share
//!   one database; live tallies notice each other's commits.
//! - **Client**: verifies the server against a CA file you give it, and nothing
//!   else; there is no way to turn verification off.
//!
//! ## Who may do what
//! Every operation has one rule ([`Op::access`]); the server checks it before
//! anything else:
//! ```
//! use voting_core::{ElectionState, ResultsPolicy, Role};
//! use voting_net::Op;
//!
//! let live = ResultsPolicy::Live;
//! assert!(Op::Cast.allowed(Role::Voter, live, ElectionState::Open));
//! assert!(!Op::Cast.allowed(Role::Admin, live, ElectionState::Open)); // admins don't vote
//! assert!(!Op::VoterList.allowed(Role::Voter, live, ElectionState::Open));
//! assert!(Op::Verify.allowed(Role::Anonymous, live, ElectionState::Closed));
//! assert_eq!(Op::from_name("election_close"), Some(Op::ElectionClose));
//! ```
//!
//! ## Example: a server and a voter
//! ```no_run
//! use std::sync::Arc;
//! use voting_core::{Secret, Store, StoreConfig};
//! use voting_net::{load_identity, Client, ClientConfig, Server, ServerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(Store::connect("mysql://voting:pw@127.0.0.1/voting", StoreConfig::default())?);
//! let identity = load_identity("certs/dev/server.pem".as_ref(), "certs/dev/server.key".as_ref())?;
//! let server = Server::bind("127.0.0.1:0", identity, store, ServerConfig::default())?.spawn()?;
//!
//! let config = ClientConfig::from_ca_file("certs/dev/ca.pem")?;
//! let mut client = Client::connect(&format!("localhost:{}", server.local_addr().port()), &config)?;
//! client.login_voter("S1", &Secret::new("ABCDE-FGHIJ-KLMNO-PQRST"))?;
//! let receipt = client.cast(&"C1".parse()?)?;
//! println!("keep this receipt: {}", receipt.receipt.expose());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod client;
mod error;
mod hub;
pub mod protocol;
mod server;
mod session;
mod wire;

pub use client::{Client, ClientConfig, ImportStage, TallyUpdates};
pub use error::NetError;
pub use protocol::{Event, Op, Request};
pub use server::{load_identity, Server, ServerConfig, ServerHandle, ServerIdentity};
