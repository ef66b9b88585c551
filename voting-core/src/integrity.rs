//! Tamper evidence: the hash chains over ballots and audit lines, the publication
//! of a closed election, and a recount that anyone can run on a publication.
//!
//! Every ballot gets a sequence number (1, 2, …) and a chain hash
//! `H(previous chain hash, sequence, candidate, receipt hash)`; every audit line
//! likewise (see [`ballot_link`] and [`audit_link`] for the exact bytes). The
//! chain heads (length and last hash) are kept in the database and given to each
//! voter with their receipt. Changing, inserting or removing a ballot or an audit
//! line afterwards breaks the chain at that point unless every later hash is
//! recomputed too — and a voter who kept their receipt's chain hash notices that.
//!
//! What this does not protect against is in `docs/SECURITY.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::types::{Srn, Tally};

/// The chain hash "before the first link": 32 zero bytes.
pub const GENESIS: [u8; 32] = [0; 32];

/// Format tag of a [`Publication`] document.
pub const PUBLICATION_FORMAT: &str = "voting-publication/1";

/// How many hex digits of a chain hash a voter is asked to write down with the
/// receipt (64 bits: enough that nobody can forge a matching chain).
pub const SEAL_PREFIX_LEN: usize = 16;

fn put_str(h: &mut Sha256, s: &str) {
    // Length-prefixed, so that field boundaries cannot be shifted.
    h.update((s.len() as u32).to_be_bytes());
    h.update(s.as_bytes());
}

/// The chain hash of ballot `seq`: SHA-256 over `"ballot\0"`, the previous chain
/// hash (32 bytes), `seq` (8 bytes, big-endian), the candidate SRN (4-byte
/// big-endian length, then its bytes) and the ballot's receipt hash (32 bytes).
pub fn ballot_link(
    prev: &[u8; 32],
    seq: u64,
    candidate: &str,
    receipt_hash: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"ballot\0");
    h.update(prev);
    h.update(seq.to_be_bytes());
    put_str(&mut h, candidate);
    h.update(receipt_hash);
    h.finalize().into()
}

/// The chain hash of audit line `seq`: SHA-256 over `"audit\0"`, the previous
/// chain hash, `seq` (8 bytes, big-endian), then `at` (RFC 3339 as published),
/// `actor`, `action` and `detail`, each as a 4-byte big-endian length and its bytes.
pub fn audit_link(
    prev: &[u8; 32],
    seq: u64,
    at: &str,
    actor: &str,
    action: &str,
    detail: &str,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"audit\0");
    h.update(prev);
    h.update(seq.to_be_bytes());
    for field in [at, actor, action, detail] {
        put_str(&mut h, field);
    }
    h.finalize().into()
}

/// A 32-byte hash as 64 lower-case hex digits.
pub fn to_hex(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// Parses 64 hex digits into a 32-byte hash; `None` if it is not one.
pub fn from_hex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

/// Where a ballot sits in the ballot chain: given to the voter with the receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BallotSeal {
    /// The ballot's sequence number (1 for the first ballot sealed).
    pub seq: u64,
    /// The chain hash after this ballot (64 hex digits).
    pub chain_hash: String,
}

impl BallotSeal {
    /// The short form a voter writes down: `#SEQ:` and the first
    /// [`SEAL_PREFIX_LEN`] hex digits of the chain hash.
    pub fn short(&self) -> String {
        let prefix: String = self.chain_hash.chars().take(SEAL_PREFIX_LEN).collect();
        format!("#{}:{prefix}", self.seq)
    }

    /// Whether `written` (a [`short`](Self::short) form, or just its hex part, or
    /// the whole hash; case and surrounding space ignored) matches this seal.
    pub fn matches(&self, written: &str) -> bool {
        let written = written.trim().to_ascii_lowercase();
        let (seq, hash) = match written.strip_prefix('#').and_then(|w| w.split_once(':')) {
            Some((seq, hash)) => (Some(seq), hash),
            None => (None, written.as_str()),
        };
        let seq_ok = seq.is_none_or(|s| s.parse::<u64>() == Ok(self.seq));
        seq_ok && hash.len() >= 8 && self.chain_hash.starts_with(hash)
    }
}

/// The result of checking a chain from its first link to its head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    /// Links in the chain (ballots or audit lines sealed so far).
    pub length: u64,
    /// The chain head: the last link's hash (64 hex digits; zeros when empty).
    pub head: String,
    /// Every link recomputes to its stored hash, numbers run 1..=length without a
    /// gap, and the head matches.
    pub intact: bool,
    /// The first problem found, in words, when not intact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One link as stored, for [`check_chain`].
#[derive(Debug, Clone)]
pub struct StoredLink {
    /// The stored sequence number.
    pub seq: u64,
    /// The hash recomputed from the previous link and this link's content.
    pub content: LinkContent,
    /// The stored chain hash.
    pub stored: [u8; 32],
}

/// What a link's hash covers.
#[derive(Debug, Clone)]
pub enum LinkContent {
    /// A ballot: candidate SRN and receipt hash.
    Ballot {
        /// Candidate SRN.
        candidate: String,
        /// SHA-256 of the receipt.
        receipt_hash: [u8; 32],
    },
    /// An audit line.
    Audit {
        /// When (RFC 3339).
        at: String,
        /// Who.
        actor: String,
        /// What.
        action: String,
        /// Details.
        detail: String,
    },
}

impl LinkContent {
    fn link(&self, prev: &[u8; 32], seq: u64) -> [u8; 32] {
        match self {
            LinkContent::Ballot {
                candidate,
                receipt_hash,
            } => ballot_link(prev, seq, candidate, receipt_hash),
            LinkContent::Audit {
                at,
                actor,
                action,
                detail,
            } => audit_link(prev, seq, at, actor, action, detail),
        }
    }
}

/// Recomputes a chain from [`GENESIS`] over `links` (in stored order) and compares
/// it with the recorded head (`length`, `head`). `what` names a link in messages
/// ("ballot", "audit line").
pub fn check_chain(
    what: &str,
    links: impl IntoIterator<Item = StoredLink>,
    length: u64,
    head: &[u8; 32],
) -> ChainCheck {
    let mut prev = GENESIS;
    let mut count = 0u64;
    let mut problem = None;
    for link in links {
        let expected_seq = count + 1;
        if link.seq != expected_seq {
            problem = Some(if link.seq > expected_seq {
                format!(
                    "{what} #{expected_seq} is missing (the next one is #{})",
                    link.seq
                )
            } else {
                format!("{what} #{} appears twice or out of order", link.seq)
            });
            break;
        }
        let computed = link.content.link(&prev, link.seq);
        if computed != link.stored {
            problem = Some(format!(
                "{what} #{} does not match its chain hash: it was altered after it was recorded",
                link.seq
            ));
            break;
        }
        prev = computed;
        count += 1;
    }
    if problem.is_none() {
        if count != length {
            problem = Some(format!(
                "the chain head records {length} {what}s but {count} are present"
            ));
        } else if prev != *head {
            problem = Some(format!(
                "the last {what} does not match the recorded chain head"
            ));
        }
    }
    ChainCheck {
        length: count,
        head: to_hex(&prev),
        intact: problem.is_none(),
        problem,
    }
}

/// One ballot as published: no voter identity, no time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedBallot {
    /// Sequence number in the ballot chain.
    pub seq: u64,
    /// The candidate it counts for.
    pub candidate: Srn,
    /// SHA-256 of the voter's receipt (hex): a voter finds their ballot by it.
    pub receipt_hash: String,
    /// Chain hash after this ballot (hex).
    pub chain_hash: String,
}

/// One audit line as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedAuditEntry {
    /// Sequence number in the audit chain.
    pub seq: u64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// Details.
    pub detail: String,
    /// Chain hash after this line (hex).
    pub chain_hash: String,
}

/// A recorded chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    /// Links in the chain.
    pub length: u64,
    /// Hash of the last link (hex; zeros when empty).
    pub head: String,
}

/// Everything published about a closed election: enough for anyone to recount
/// it with [`recount`] (or `voting recount FILE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    /// Always [`PUBLICATION_FORMAT`].
    pub format: String,
    /// When voting opened and closed (UTC, RFC 3339).
    pub opened_at: Option<String>,
    /// When voting closed.
    pub closed_at: Option<String>,
    /// The final tally as the server counted it.
    pub tally: Tally,
    /// Every ballot, by sequence number.
    pub ballots: Vec<PublishedBallot>,
    /// The ballot chain's recorded head.
    pub ballot_chain: ChainHead,
    /// Every audit line, by sequence number.
    pub audit: Vec<PublishedAuditEntry>,
    /// The audit chain's recorded head.
    pub audit_chain: ChainHead,
}

/// What [`recount`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecountReport {
    /// Ballots counted from the list.
    pub ballots: u64,
    /// Votes per candidate, counted from the ballot list.
    pub counts: BTreeMap<String, u64>,
    /// The ballot chain, recomputed.
    pub ballot_chain: ChainCheck,
    /// The audit chain, recomputed.
    pub audit_chain: ChainCheck,
    /// Every mismatch found, in words; empty when the publication is consistent.
    pub problems: Vec<String>,
}

impl RecountReport {
    /// True when the recount matches the published tally and both chains are intact.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Recounts a publication: recomputes the tally from the ballot list and both
/// chains from their first link, and lists every way they differ from what the
/// publication states. Needs no server and no database.
pub fn recount(p: &Publication) -> RecountReport {
    let mut problems = Vec::new();
    if p.format != PUBLICATION_FORMAT {
        problems.push(format!(
            "unknown format {:?} (expected {PUBLICATION_FORMAT:?})",
            p.format
        ));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut ballot_links = Vec::with_capacity(p.ballots.len());
    for b in &p.ballots {
        *counts.entry(b.candidate.to_string()).or_default() += 1;
        match (from_hex(&b.receipt_hash), from_hex(&b.chain_hash)) {
            (Some(receipt_hash), Some(stored)) => ballot_links.push(StoredLink {
                seq: b.seq,
                content: LinkContent::Ballot {
                    candidate: b.candidate.to_string(),
                    receipt_hash,
                },
                stored,
            }),
            _ => {
                problems.push(format!("ballot #{} has a malformed hash", b.seq));
                // Keep the position so the chain check reports the break here.
                ballot_links.push(StoredLink {
                    seq: b.seq,
                    content: LinkContent::Ballot {
                        candidate: b.candidate.to_string(),
                        receipt_hash: GENESIS,
                    },
                    stored: GENESIS,
                });
            }
        }
    }
    let ballot_chain = check_head("ballot", ballot_links, &p.ballot_chain, &mut problems);

    let audit_links = p.audit.iter().map(|a| StoredLink {
        seq: a.seq,
        content: LinkContent::Audit {
            at: a.at.clone(),
            actor: a.actor.clone(),
            action: a.action.clone(),
            detail: a.detail.clone(),
        },
        stored: from_hex(&a.chain_hash).unwrap_or(GENESIS),
    });
    let audit_chain = check_head("audit line", audit_links, &p.audit_chain, &mut problems);

    let ballots = p.ballots.len() as u64;
    if p.tally.ballots != ballots {
        problems.push(format!(
            "the tally states {} ballots but the list holds {ballots}",
            p.tally.ballots
        ));
    }
    if p.tally.voted != ballots {
        problems.push(format!(
            "{} voters are marked as voted but the list holds {ballots} ballots",
            p.tally.voted
        ));
    }
    for c in &p.tally.candidates {
        let counted = counts.get(c.srn.as_str()).copied().unwrap_or(0);
        if counted != c.votes {
            problems.push(format!(
                "{} ({}): the tally states {} votes, the ballots hold {counted}",
                c.srn, c.name, c.votes
            ));
        }
    }
    for (srn, n) in &counts {
        if !p.tally.candidates.iter().any(|c| c.srn.as_str() == srn) {
            problems.push(format!(
                "{n} ballots are for {srn}, who is not in the tally"
            ));
        }
    }
    RecountReport {
        ballots,
        counts,
        ballot_chain,
        audit_chain,
        problems,
    }
}

fn check_head(
    what: &str,
    links: impl IntoIterator<Item = StoredLink>,
    head: &ChainHead,
    problems: &mut Vec<String>,
) -> ChainCheck {
    let Some(head_hash) = from_hex(&head.head) else {
        problems.push(format!("the {what} chain head is not a hash"));
        return check_chain(what, links, head.length, &[0xff; 32]);
    };
    let check = check_chain(what, links, head.length, &head_hash);
    if let Some(p) = &check.problem {
        problems.push(format!("{what} chain: {p}"));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CandidateCount, ElectionState};

    fn publication(votes: &[&str]) -> Publication {
        let mut prev = GENESIS;
        let mut ballots = Vec::new();
        for (i, c) in votes.iter().enumerate() {
            let seq = i as u64 + 1;
            let receipt_hash: [u8; 32] = Sha256::digest(format!("r{i}")).into();
            prev = ballot_link(&prev, seq, c, &receipt_hash);
            ballots.push(PublishedBallot {
                seq,
                candidate: Srn::parse(c).unwrap(),
                receipt_hash: to_hex(&receipt_hash),
                chain_hash: to_hex(&prev),
            });
        }
        let audit_hash = audit_link(&GENESIS, 1, "2026-01-01T00:00:00.000000Z", "local", "x", "");
        let count = |s: &str| votes.iter().filter(|v| **v == s).count() as u64;
        Publication {
            format: PUBLICATION_FORMAT.into(),
            opened_at: None,
            closed_at: None,
            tally: Tally {
                state: ElectionState::Closed,
                candidates: ["A", "B"]
                    .iter()
                    .map(|s| CandidateCount {
                        srn: Srn::parse(s).unwrap(),
                        name: s.to_string(),
                        affiliation: None,
                        votes: count(s),
                    })
                    .collect(),
                ballots: votes.len() as u64,
                voters: 10,
                voted: votes.len() as u64,
            },
            ballot_chain: ChainHead {
                length: votes.len() as u64,
                head: to_hex(&prev),
            },
            ballots,
            audit: vec![PublishedAuditEntry {
                seq: 1,
                at: "2026-01-01T00:00:00.000000Z".into(),
                actor: "local".into(),
                action: "x".into(),
                detail: String::new(),
                chain_hash: to_hex(&audit_hash),
            }],
            audit_chain: ChainHead {
                length: 1,
                head: to_hex(&audit_hash),
            },
        }
    }

    #[test]
    fn a_consistent_publication_recounts_clean() {
        let report = recount(&publication(&["A", "B", "A"]));
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(report.counts.get("A"), Some(&2));
        assert_eq!(report.ballot_chain.length, 3);
    }

    #[test]
    fn an_altered_ballot_breaks_the_chain_at_that_ballot() {
        let mut p = publication(&["A", "B", "A"]);
        p.ballots[1].candidate = Srn::parse("A").unwrap();
        p.tally.candidates[0].votes = 3;
        p.tally.candidates[1].votes = 0;
        let report = recount(&p);
        assert_eq!(
            report.ballot_chain.problem.as_deref(),
            Some("ballot #2 does not match its chain hash: it was altered after it was recorded")
        );
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    }

    #[test]
    fn a_removed_ballot_or_audit_line_and_a_wrong_tally_are_each_reported() {
        let mut p = publication(&["A", "B", "A"]);
        p.ballots.remove(1);
        p.audit.clear();
        p.tally.candidates[1].votes = 5;
        let report = recount(&p);
        let all = report.problems.join("\n");
        assert!(all.contains("ballot #2 is missing"), "{all}");
        assert!(
            all.contains("records 1 audit lines but 0 are present"),
            "{all}"
        );
        assert!(
            all.contains("the tally states 3 ballots but the list holds 2"),
            "{all}"
        );
        assert!(
            all.contains("B (B): the tally states 5 votes, the ballots hold 0"),
            "{all}"
        );
    }

    #[test]
    fn a_seal_matches_its_short_form_and_not_another() {
        let seal = BallotSeal {
            seq: 7,
            chain_hash: "0123456789abcdef".repeat(4),
        };
        assert_eq!(seal.short(), "#7:0123456789abcdef");
        assert!(seal.matches(" #7:0123456789ABCDEF "));
        assert!(seal.matches("0123456789abcdef"));
        assert!(!seal.matches("#8:0123456789abcdef"));
        assert!(!seal.matches("#7:1123456789abcdef"));
        assert!(!seal.matches("0123"), "too short to mean anything");
    }
}
