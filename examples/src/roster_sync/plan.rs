//! Reading the wanted roll from CSV and comparing it with the server's: no
//! network, no side effects.

use std::collections::BTreeMap;
use std::io::Read;

use voting_core::{NewVoter, Srn, Voter};

/// What differs between the CSV and the roll.
#[derive(Debug, Default)]
pub struct SyncPlan {
    /// In the CSV, not on the roll.
    pub add: Vec<NewVoter>,
    /// On the roll, not in the CSV, not voted.
    pub remove: Vec<Voter>,
    /// On the roll, not in the CSV, but voted: they stay.
    pub keep_voted: Vec<Voter>,
    /// In both, with other names or date of birth: (on the roll, in the CSV).
    pub changed: Vec<(Voter, NewVoter)>,
    /// In both, identical.
    pub unchanged: usize,
}

/// Reads and checks a roll CSV (`srn,first_name,last_name,dob`; `dob` may be
/// empty or absent) with the library's reader, the one `voting admin voter
/// import` uses. `source` names the input in messages. It refuses an empty file
/// and an SRN listed twice: syncing against either would remove voters by
/// mistake.
pub fn read_roll_csv(input: impl Read, source: &str) -> anyhow::Result<Vec<NewVoter>> {
    Ok(voting_core::roll_file::read_roll_csv(input, source)?)
}

/// Compares the wanted roll with the server's. Pure: no I/O.
pub fn plan_sync(wanted: &[NewVoter], roll: &[Voter]) -> SyncPlan {
    let on_roll: BTreeMap<&Srn, &Voter> = roll.iter().map(|v| (&v.srn, v)).collect();
    let in_csv: BTreeMap<&Srn, &NewVoter> = wanted.iter().map(|v| (&v.srn, v)).collect();
    let mut plan = SyncPlan::default();
    for (srn, new) in &in_csv {
        match on_roll.get(srn) {
            None => plan.add.push((*new).clone()),
            Some(old) if same_details(old, new) => plan.unchanged += 1,
            Some(old) => plan.changed.push(((*old).clone(), (*new).clone())),
        }
    }
    for (srn, old) in &on_roll {
        if !in_csv.contains_key(srn) {
            let list = if old.voted {
                &mut plan.keep_voted
            } else {
                &mut plan.remove
            };
            list.push((*old).clone());
        }
    }
    plan
}

fn same_details(old: &Voter, new: &NewVoter) -> bool {
    old.first_name == new.first_name && old.last_name == new.last_name && old.dob == new.dob
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voter(srn: &str, first: &str, voted: bool) -> Voter {
        Voter {
            srn: Srn::parse(srn).expect("srn"),
            first_name: first.into(),
            last_name: "Doe".into(),
            dob: None,
            voted,
        }
    }

    #[test]
    fn the_plan_sorts_every_voter_into_exactly_one_bucket() -> anyhow::Result<()> {
        let csv = "srn,first_name,last_name,dob\ns1,Ann,Doe,\nS2,Bea,Doe,\nS4,Dan,Doe,1990-01-02\n";
        let wanted = read_roll_csv(csv.as_bytes(), "roll.csv")?;
        let roll = [
            voter("S1", "Ann", false),
            voter("S2", "Bee", true),
            voter("S3", "Cid", false),
            voter("S5", "Eve", true),
        ];
        let plan = plan_sync(&wanted, &roll);
        let srns = |v: &[Voter]| v.iter().map(|v| v.srn.to_string()).collect::<Vec<_>>();
        assert_eq!(plan.add.len(), 1);
        assert_eq!(plan.add[0].srn.as_str(), "S4");
        assert_eq!(srns(&plan.remove), ["S3"]);
        assert_eq!(srns(&plan.keep_voted), ["S5"]);
        assert_eq!(plan.changed.len(), 1);
        assert_eq!(plan.changed[0].1.first_name, "Bea");
        assert_eq!(plan.unchanged, 1);
        Ok(())
    }

    #[test]
    fn a_csv_that_would_empty_or_confuse_the_roll_is_refused() {
        let refused = |csv: &str| {
            read_roll_csv(csv.as_bytes(), "roll.csv")
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(refused("srn,first_name,last_name,dob\n").contains("no voters in the file"));
        let twice = refused("srn,first_name,last_name\nS1,A,B\ns1,C,D\n");
        assert!(twice.contains("S1 is already on line 2"), "{twice}");
        assert!(refused("srn,name\nS1,A\n").contains("no 'first_name' column"));
        assert!(refused("srn,first_name,last_name,dob\nS1,A,B,1990-02-30\n").contains("line 2"));
    }
}
