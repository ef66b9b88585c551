//! Who may see what: roles and the results-visibility rule.

use serde::{Deserialize, Serialize};

use crate::types::ElectionState;

/// Who is on the other end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Not signed in.
    Anonymous,
    /// A signed-in voter.
    Voter,
    /// A signed-in administrator.
    Admin,
}

/// When the tally is visible to people other than admins (a server setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResultsPolicy {
    /// Anyone may watch the count as it happens (the original system's behaviour).
    #[default]
    Live,
    /// Only admins see the count until the election closes.
    AfterClose,
}

impl ResultsPolicy {
    /// Whether `role` may read the tally while the election is in `state`.
    pub fn visible_to(self, role: Role, state: ElectionState) -> bool {
        match self {
            ResultsPolicy::Live => true,
            ResultsPolicy::AfterClose => role == Role::Admin || state == ElectionState::Closed,
        }
    }

    /// The setting's name as written on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultsPolicy::Live => "live",
            ResultsPolicy::AfterClose => "after-close",
        }
    }
}

impl std::str::FromStr for ResultsPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(ResultsPolicy::Live),
            "after-close" => Ok(ResultsPolicy::AfterClose),
            other => Err(format!(
                "'{other}' is not a results policy (live or after-close)"
            )),
        }
    }
}
