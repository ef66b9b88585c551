//! Domain types of an election, validated where they are built so the rest of the
//! library can trust them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::integrity::{BallotSeal, ChainCheck};

use crate::error::{Result, VotingError};

/// Longest SRN accepted.
pub const SRN_MAX_LEN: usize = 32;
/// Longest first or last name (in characters).
pub const NAME_MAX_CHARS: usize = 100;
/// Longest candidate name or affiliation (in characters).
pub const LABEL_MAX_CHARS: usize = 200;

/// A student (or member) registration number: the key of voters and candidates.
///
/// 1–32 characters from `A–Z a–z 0–9 - _`, stored upper-case, so `ab-1` and
/// `AB-1` are the same person.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Srn(String);

impl Srn {
    /// Validates and normalises `s` (surrounding blanks are ignored).
    pub fn parse(s: &str) -> Result<Srn> {
        let s = s.trim();
        if s.is_empty() || s.len() > SRN_MAX_LEN {
            return Err(VotingError::invalid(format!(
                "an SRN has 1 to {SRN_MAX_LEN} characters"
            )));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(VotingError::invalid(
                "an SRN may only contain letters, digits, '-' and '_'",
            ));
        }
        Ok(Srn(s.to_ascii_uppercase()))
    }

    /// The normalised (upper-case) form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Srn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Srn {
    type Err = VotingError;
    fn from_str(s: &str) -> Result<Srn> {
        Srn::parse(s)
    }
}

impl<'de> Deserialize<'de> for Srn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Srn, D::Error> {
        let s = String::deserialize(d)?;
        Srn::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An administrator's sign-in name: 1–64 characters from `a–z 0–9 . - _`, stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct AdminName(String);

impl AdminName {
    /// Validates and normalises `s`.
    pub fn parse(s: &str) -> Result<AdminName> {
        let s = s.trim();
        if s.is_empty() || s.len() > 64 {
            return Err(VotingError::invalid("an admin name has 1 to 64 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(VotingError::invalid(
                "an admin name may only contain letters, digits, '.', '-' and '_'",
            ));
        }
        Ok(AdminName(s.to_ascii_lowercase()))
    }

    /// The normalised (lower-case) form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AdminName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a free-text field: trimmed, non-empty (unless `optional`), at most
/// `max` characters, no control characters. Any script, emoji or quote is fine.
pub(crate) fn clean_text(field: &str, value: &str, max: usize) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        return Err(VotingError::invalid(format!("{field} must not be empty")));
    }
    if v.chars().count() > max {
        return Err(VotingError::invalid(format!(
            "{field} has more than {max} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(VotingError::invalid(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_string())
}

/// A calendar date `YYYY-MM-DD` (a voter's date of birth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    year: u16,
    month: u8,
    day: u8,
}

impl Date {
    /// Parses `YYYY-MM-DD` and checks that the day exists (leap years included).
    pub fn parse(s: &str) -> Result<Date> {
        let bad = || VotingError::invalid(format!("'{s}' is not a date of the form YYYY-MM-DD"));
        let s = s.trim();
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse::<u32>().map_err(|_| bad())
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        if !(1900..=2999).contains(&year) {
            return Err(VotingError::invalid(format!(
                "'{s}': the year must be between 1900 and 2999"
            )));
        }
        if !(1..=12).contains(&month) {
            return Err(bad());
        }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day == 0 || day > days {
            return Err(bad());
        }
        Ok(Date {
            year: year as u16,
            month: month as u8,
            day: day as u8,
        })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A voter to be put on the roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewVoter {
    /// Registration number (the key).
    pub srn: Srn,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Date of birth, when the roll records it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<Date>,
}

impl NewVoter {
    /// Builds a voter from raw text, validating every field.
    pub fn parse(srn: &str, first_name: &str, last_name: &str, dob: Option<&str>) -> Result<Self> {
        let dob = match dob.map(str::trim) {
            None | Some("") => None,
            Some(d) => Some(Date::parse(d)?),
        };
        NewVoter {
            srn: Srn::parse(srn)?,
            first_name: first_name.to_string(),
            last_name: last_name.to_string(),
            dob,
        }
        .validated()
    }

    /// Re-checks the free-text fields (used for values that came from the wire).
    pub fn validated(mut self) -> Result<Self> {
        self.first_name = clean_text("first name", &self.first_name, NAME_MAX_CHARS)?;
        self.last_name = clean_text("last name", &self.last_name, NAME_MAX_CHARS)?;
        Ok(self)
    }
}

/// A voter on the roll, as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Voter {
    /// Registration number.
    pub srn: Srn,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Date of birth, if recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dob: Option<Date>,
    /// Whether this voter has cast their ballot (never *which* ballot).
    pub voted: bool,
}

/// A candidate to be put on the ballot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The candidate's registration number (the key a ballot names).
    pub srn: Srn,
    /// Name as printed on the ballot.
    pub name: String,
    /// Party, list or society, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliation: Option<String>,
}

impl Candidate {
    /// Builds a candidate from raw text, validating every field.
    pub fn parse(srn: &str, name: &str, affiliation: Option<&str>) -> Result<Self> {
        Candidate {
            srn: Srn::parse(srn)?,
            name: name.to_string(),
            affiliation: affiliation.map(str::to_string),
        }
        .validated()
    }

    /// Re-checks the free-text fields (used for values that came from the wire).
    pub fn validated(mut self) -> Result<Self> {
        self.name = clean_text("candidate name", &self.name, LABEL_MAX_CHARS)?;
        self.affiliation = match self.affiliation.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(a) => Some(clean_text("affiliation", a, LABEL_MAX_CHARS)?),
        };
        Ok(self)
    }
}

/// The election's lifecycle: `setup` → `open` → `closed`, never backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElectionState {
    /// Candidates and voters are being entered; nobody can vote.
    Setup,
    /// Voting is possible; the candidate list is frozen.
    Open,
    /// Voting has ended; the roll and the ballot box are frozen.
    Closed,
}

impl ElectionState {
    /// The lower-case name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionState::Setup => "setup",
            ElectionState::Open => "open",
            ElectionState::Closed => "closed",
        }
    }

    pub(crate) fn from_db(s: &str) -> Result<Self> {
        match s {
            "setup" => Ok(ElectionState::Setup),
            "open" => Ok(ElectionState::Open),
            "closed" => Ok(ElectionState::Closed),
            other => Err(VotingError::Internal(format!(
                "unknown election state '{other}' in the database"
            ))),
        }
    }
}

impl fmt::Display for ElectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the election stands: its state and its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElectionStatus {
    /// Lifecycle state.
    pub state: ElectionState,
    /// Candidates standing.
    pub candidates: u64,
    /// Voters on the roll.
    pub voters: u64,
    /// Voters who have voted.
    pub voted: u64,
    /// When voting opened (UTC, RFC 3339), if it has.
    #[serde(default)]
    pub opened_at: Option<String>,
    /// When voting closed (UTC, RFC 3339), if it has.
    #[serde(default)]
    pub closed_at: Option<String>,
}

/// One candidate's line in the tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateCount {
    /// Candidate's SRN.
    pub srn: Srn,
    /// Candidate's name.
    pub name: String,
    /// Candidate's affiliation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affiliation: Option<String>,
    /// Ballots for this candidate.
    pub votes: u64,
}

/// The count of ballots per candidate, read in one consistent snapshot.
///
/// Invariant (checked by the tests): `ballots` equals the sum of `votes` and the
/// number of voters marked as voted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Lifecycle state at the time of the count.
    pub state: ElectionState,
    /// Every candidate, ordered by SRN, with their count (zero included).
    pub candidates: Vec<CandidateCount>,
    /// Ballots in the box.
    pub ballots: u64,
    /// Voters on the roll (eligible).
    pub voters: u64,
    /// Voters marked as voted.
    pub voted: u64,
}

impl Tally {
    /// The count for one candidate, if standing.
    pub fn votes_for(&self, srn: &Srn) -> Option<u64> {
        self.candidates
            .iter()
            .find(|c| &c.srn == srn)
            .map(|c| c.votes)
    }
}

/// What a signed-in voter may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    /// On the roll, not yet voted, election open.
    Eligible,
    /// Has voted already.
    AlreadyVoted,
    /// The election is not open (yet, or any more).
    ElectionNotOpen,
    /// Not (or no longer) on the roll.
    NotOnRoll,
}

/// What a receipt proves: the ballot is in the box, for this candidate, at this
/// place in the ballot chain, and whether the whole chain is intact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptCheck {
    /// The ballot's row in the box.
    pub ballot_id: u64,
    /// The candidate the ballot counts for.
    pub candidate: Srn,
    /// Where the ballot sits in the ballot chain (compare with what the voter
    /// wrote down when voting: [`BallotSeal::matches`]).
    #[serde(default)]
    pub seal: Option<BallotSeal>,
    /// The ballot chain recomputed from the first ballot to the current head.
    #[serde(default)]
    pub chain: Option<ChainCheck>,
}

impl ReceiptCheck {
    /// Whether the check can be trusted: `Ok` when the ballot chain is intact
    /// and, if the voter wrote down the seal they got when voting, it still
    /// matches. Otherwise the `integrity_violation` saying what is wrong.
    pub fn confirm(&self, written_seal: Option<&str>) -> Result<()> {
        if let (Some(written), Some(seal)) = (written_seal, &self.seal) {
            if !seal.matches(written) {
                return Err(VotingError::IntegrityViolation(format!(
                    "this ballot's seal is now {}, not the {} written down when voting: \
                     the ballot chain was rewritten since",
                    seal.short(),
                    written.trim()
                )));
            }
        }
        match &self.chain {
            Some(chain) if !chain.intact => Err(VotingError::IntegrityViolation(format!(
                "the ballot chain is broken: {}",
                chain.problem.as_deref().unwrap_or("no reason given")
            ))),
            _ => Ok(()),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log.
    pub id: u64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who: `admin:NAME`, or `local` for database-level tooling.
    pub actor: String,
    /// What, as a dotted verb (`voter.add`, `election.open`, …).
    pub action: String,
    /// Details (the SRN concerned, a count, …); never a secret.
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srn_is_normalised_and_bounded() {
        assert_eq!(Srn::parse(" ab-1_z ").unwrap().as_str(), "AB-1_Z");
        assert!(Srn::parse(&"X".repeat(32)).is_ok());
        for bad in ["", " ", &"X".repeat(33), "A B", "A;B", "É1", "A'1"] {
            let e = Srn::parse(bad).unwrap_err();
            assert_eq!(e.code(), crate::ErrorCode::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn a_receipt_check_is_confirmed_only_with_an_intact_chain_and_the_same_seal() {
        let check = |intact: bool| ReceiptCheck {
            ballot_id: 3,
            candidate: Srn::parse("C1").unwrap(),
            seal: Some(BallotSeal {
                seq: 2,
                chain_hash: "ab".repeat(32),
            }),
            chain: Some(ChainCheck {
                length: 5,
                head: "cd".repeat(32),
                intact,
                problem: (!intact).then(|| "ballot #4 is missing (the next one is #5)".into()),
            }),
        };
        assert!(check(true).confirm(None).is_ok());
        assert!(check(true).confirm(Some("#2:abababababababab")).is_ok());
        let rewritten = check(true)
            .confirm(Some("#2:abababababababac"))
            .unwrap_err();
        assert_eq!(rewritten.code(), crate::ErrorCode::IntegrityViolation);
        assert!(
            rewritten
                .to_string()
                .contains("seal is now #2:abababababababab"),
            "{rewritten}"
        );
        let broken = check(false).confirm(None).unwrap_err();
        assert_eq!(broken.code(), crate::ErrorCode::IntegrityViolation);
        assert!(
            broken.to_string().contains("ballot #4 is missing"),
            "{broken}"
        );
    }

    #[test]
    fn dates_are_real_days() {
        assert_eq!(Date::parse("2004-02-29").unwrap().to_string(), "2004-02-29");
        for bad in [
            "2003-02-29",
            "2004-13-01",
            "2004-1-01",
            "04-01-2004",
            "2004-04-31",
            "abcd-ef-gh",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_keep_any_script_but_no_control_characters() {
        let v = NewVoter::parse("s1", "  O'Brien \"%\\ 😀", "שלום", None).unwrap();
        assert_eq!(v.first_name, "O'Brien \"%\\ 😀");
        assert_eq!(v.last_name, "שלום");
        assert!(NewVoter::parse("s1", "a\u{0}b", "x", None).is_err());
        assert!(NewVoter::parse("s1", "", "x", None).is_err());
        assert!(NewVoter::parse("s1", &"é".repeat(101), "x", None).is_err());
    }
}
