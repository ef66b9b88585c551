//! The embedding example, run against a real database and real TLS, checked
//! for what someone running it would see.

use std::sync::Arc;

use voting_core::{AdminName, ElectionState, Secret, Store, StoreConfig};
use voting_examples::{run_demo_election, DatabaseInUse};
use voting_net::{load_identity, ClientConfig};
use voting_testkit::{TestCerts, TestDb};

/// Runs the demo on `db` with fresh certificates, collecting what it prints.
fn run_demo(db: &TestDb) -> (anyhow::Result<voting_examples::DemoOutcome>, String) {
    let certs = TestCerts::new();
    let mut printed = Vec::new();
    let outcome = (|| {
        let store = Arc::new(Store::connect(&db.url(), StoreConfig::default())?);
        let identity = load_identity(&certs.cert(), &certs.key())?;
        let ca = ClientConfig::from_ca_file(certs.ca())?;
        run_demo_election(store, identity, &ca, &mut printed)
    })();
    (outcome, String::from_utf8_lossy(&printed).into_owned())
}

#[test]
fn every_vote_is_counted_pushed_live_and_verifiable() -> anyhow::Result<()> {
    let db = TestDb::new();
    let (outcome, printed) = run_demo(&db);
    let outcome = outcome?;

    let tally = &outcome.final_tally;
    assert_eq!(tally.state, ElectionState::Closed);
    assert_eq!(tally.ballots, 3);
    assert_eq!(outcome.votes_cast.len(), 3);
    for count in &tally.candidates {
        let cast = outcome
            .votes_cast
            .iter()
            .filter(|c| **c == count.srn)
            .count();
        assert_eq!(count.votes, cast as u64, "votes for {}", count.srn);
    }
    assert_eq!(
        Some(&outcome.receipt_check.candidate),
        outcome.votes_cast.first()
    );
    assert!(
        outcome.pushed_tallies.iter().any(|t| t.ballots == 3),
        "pushed: {:?}",
        outcome.pushed_tallies
    );
    assert!(printed.contains("[watcher] ballots: 3"), "{printed}");
    assert!(printed.contains("receipt verified: ballot"), "{printed}");
    Ok(())
}

#[test]
fn a_database_made_for_a_real_election_is_left_untouched() -> anyhow::Result<()> {
    // Schema and an admin, nothing else yet: what `voting db init` + `add-admin` leave.
    let db = TestDb::new();
    let store = Store::connect(&db.url(), StoreConfig::default())?;
    store.init_schema()?;
    store.create_admin(
        &AdminName::parse("officer")?,
        &Secret::new("correct horse battery"),
    )?;

    let (outcome, printed) = run_demo(&db);
    let error = outcome.err().map(|e| e.is::<DatabaseInUse>());
    assert_eq!(error, Some(true), "{printed}");
    let status = store.election_status()?;
    assert_eq!(
        (status.state, status.candidates, status.voters),
        (ElectionState::Setup, 0, 0)
    );
    Ok(())
}

#[test]
fn the_demo_runs_once_per_database() -> anyhow::Result<()> {
    let db = TestDb::new();
    run_demo(&db).0?;
    let (again, _) = run_demo(&db);
    assert!(again.is_err_and(|e| e.is::<DatabaseInUse>()));
    Ok(())
}
