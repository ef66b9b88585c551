//! # voting-core
//!
//! The rules of an election and their storage in MariaDB/MySQL, as a library.
//!
//! ## The model
//! - **Roles.** *Admins* (name + password chosen by a person) run the election;
//!   *voters* (on the roll by SRN) sign in with a credential the system generated
//!   for them. Admin operations take an [`AdminSession`], a vote takes a
//!   [`VoterSession`]: the type system enforces who may do what.
//! - **Lifecycle.** [`ElectionState::Setup`] → [`ElectionState::Open`] →
//!   [`ElectionState::Closed`]. Candidates change only in setup; voters may be
//!   added until close; votes are accepted only while open.
//! - **One voter, one vote.** [`Store::cast_vote`] is one transaction that marks
//!   the voter as voted (only if they had not) and drops an anonymous ballot in the
//!   box. Both happen or neither does, however many attempts race.
//! - **Ballot secrecy.** Ballots carry no voter identity and no time; the roll
//!   records only *that* a voter voted. The [`Tally`] is counted from the ballots.
//! - **Receipts.** Each ballot gets a random receipt (140 bits) whose hash is stored
//!   with it: [`Store::verify_receipt`] tells its holder the ballot is counted.
//! - **Tamper evidence.** Ballots and audit lines are hash-chained ([`integrity`]);
//!   a voter keeps their ballot's place in the chain ([`BallotSeal`]) with the
//!   receipt, and after the close [`Store::publication`] gives everyone the ballot
//!   list to [`integrity::recount`].
//! - **Errors** are one enum, [`VotingError`], whose [`ErrorCode`] is stable and
//!   travels on the wire.
//!
//! ## Rules you can check without a database
//! ```
//! use voting_core::{ElectionState, ResultsPolicy, Role, Srn};
//!
//! // SRNs are validated at the boundary and compared upper-case.
//! let srn: Srn = " ab-12 ".parse()?;
//! assert_eq!(srn.as_str(), "AB-12");
//! assert!("has space".parse::<Srn>().is_err());
//!
//! // With results published after close, only admins see a running count.
//! let policy = ResultsPolicy::AfterClose;
//! assert!(!policy.visible_to(Role::Voter, ElectionState::Open));
//! assert!(policy.visible_to(Role::Admin, ElectionState::Open));
//! assert!(policy.visible_to(Role::Anonymous, ElectionState::Closed));
//! # Ok::<(), voting_core::VotingError>(())
//! ```
//!
//! ## An election against a database
//! ```no_run
//! use voting_core::{AdminName, AdminSession, Candidate, NewVoter, Secret, Store, StoreConfig};
//!
//! # fn main() -> voting_core::Result<()> {
//! let store = Store::connect("mysql://voting:pw@127.0.0.1:3306/voting", StoreConfig::default())?;
//! store.init_schema()?;
//! let admin = AdminSession::trusted(AdminName::parse("returning-officer")?);
//! store.add_candidate(&admin, &Candidate::parse("C1", "Ada Lovelace", None)?)?;
//! let credential = store.add_voter(&admin, &NewVoter::parse("S1", "Alan", "Turing", None)?)?;
//! store.open_election(&admin)?;
//!
//! let voter = store.authenticate_voter("S1", &credential)?;
//! let receipt = store.cast_vote(&voter, &"C1".parse()?)?;
//! assert_eq!(store.verify_receipt(receipt.receipt.expose())?.candidate.as_str(), "C1");
//! assert_eq!(store.tally()?.ballots, 1);
//! # let _ = Secret::new("");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod credentials;
mod error;
pub mod integrity;
mod policy;
pub mod roll_file;
mod store;
mod types;

pub use credentials::{HashCost, HashLimiter, Secret};
pub use error::{ErrorCode, Result, VotingError};
pub use integrity::{BallotSeal, ChainCheck, Publication, RecountReport};
pub use policy::{ResultsPolicy, Role};
pub use store::audit::AUDIT_PAGE_MAX;
pub use store::{
    AdminSession, CastReceipt, ChangeToken, ImportedVoter, LoginPolicy, Store, StoreConfig,
    VoterSession, IMPORT_MAX_VOTERS, SCHEMA_SQL,
};
pub use types::{
    AdminName, AuditEntry, Candidate, CandidateCount, Date, ElectionState, ElectionStatus,
    Eligibility, NewVoter, ReceiptCheck, Srn, Tally, Voter, SRN_MAX_LEN,
};
