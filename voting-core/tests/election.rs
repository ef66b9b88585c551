//! The election rules against a real MariaDB: one database per test.

use std::sync::Arc;

use voting_core::{
    AdminName, AdminSession, Candidate, ElectionState, Eligibility, ErrorCode, LoginPolicy,
    NewVoter, Secret, Srn, Store, StoreConfig, Tally,
};
use voting_testkit::TestDb;

fn fresh_store(config: StoreConfig) -> (TestDb, Store) {
    let db = TestDb::new();
    let store = Store::connect(&db.url(), config).expect("connect");
    store.init_schema().expect("schema");
    (db, store)
}

fn admin() -> AdminSession {
    AdminSession::trusted(AdminName::parse("officer").unwrap())
}

fn srn(s: &str) -> Srn {
    Srn::parse(s).unwrap()
}

/// Two candidates, `n` voters (S1..Sn) with their credentials.
fn setup(store: &Store, n: usize) -> Vec<Secret> {
    let a = admin();
    store
        .add_candidate(&a, &Candidate::parse("C1", "Ada", Some("Engines")).unwrap())
        .unwrap();
    store
        .add_candidate(&a, &Candidate::parse("C2", "Grace", None).unwrap())
        .unwrap();
    (1..=n)
        .map(|i| {
            store
                .add_voter(
                    &a,
                    &NewVoter::parse(&format!("s{i}"), "First", "Last", Some("2001-02-03"))
                        .unwrap(),
                )
                .unwrap()
        })
        .collect()
}

fn assert_consistent(t: &Tally) {
    let sum: u64 = t.candidates.iter().map(|c| c.votes).sum();
    assert_eq!(sum, t.ballots, "tally sums to the ballots");
    assert_eq!(t.voted, t.ballots, "voters marked voted = ballots");
}

#[test]
fn a_whole_election_counts_every_ballot_once_and_receipts_verify() {
    let (_db, store) = fresh_store(StoreConfig::default());
    store.init_schema().expect("schema is idempotent");
    let creds = setup(&store, 3);
    let a = admin();
    assert_eq!(store.election_status().unwrap().state, ElectionState::Setup);
    store.open_election(&a).unwrap();

    let mut receipts = Vec::new();
    for (i, cred) in creds.iter().enumerate() {
        let voter = store
            .authenticate_voter(&format!("S{}", i + 1), cred)
            .unwrap();
        assert_eq!(store.eligibility(&voter).unwrap(), Eligibility::Eligible);
        let choice = if i == 0 { "C2" } else { "C1" };
        receipts.push((store.cast_vote(&voter, &srn(choice)).unwrap(), choice));
        assert_eq!(
            store.eligibility(&voter).unwrap(),
            Eligibility::AlreadyVoted
        );
    }
    let tally = store.tally().unwrap();
    assert_eq!(tally.votes_for(&srn("C1")), Some(2));
    assert_eq!(tally.votes_for(&srn("C2")), Some(1));
    assert_eq!((tally.voters, tally.voted, tally.ballots), (3, 3, 3));
    assert_consistent(&tally);

    let status = store.close_election(&a).unwrap();
    assert_eq!(status.state, ElectionState::Closed);
    assert!(status.closed_at.is_some());
    for (r, choice) in &receipts {
        // Typed sloppily: lower case, without dashes.
        let typed = r.receipt.expose().replace('-', "").to_lowercase();
        assert_eq!(store.verify_receipt(&typed).unwrap().candidate, srn(choice));
    }
    assert_eq!(
        store
            .verify_receipt("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG")
            .unwrap_err()
            .code(),
        ErrorCode::NotFound
    );
    let actions: Vec<String> = store
        .audit_log(&a, 0, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions.iter().filter(|a| *a == "voter.add").count(), 3);
    assert!(actions.contains(&"election.open".to_string()));
    assert_eq!(actions.last().map(String::as_str), Some("election.close"));
}

#[test]
fn twenty_simultaneous_attempts_by_one_voter_make_exactly_one_ballot() {
    let (_db, store) = fresh_store(StoreConfig::default());
    let creds = setup(&store, 1);
    store.open_election(&admin()).unwrap();
    let store = Arc::new(store);
    let voter = store.authenticate_voter("S1", &creds[0]).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(20));
    let outcomes: Vec<_> = (0..20)
        .map(|i| {
            let (store, voter, barrier) = (store.clone(), voter.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let choice = if i % 2 == 0 { "C1" } else { "C2" };
                store.cast_vote(&voter, &srn(choice)).map_err(|e| e.code())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(outcomes
        .iter()
        .filter_map(|o| o.as_ref().err())
        .all(|c| *c == ErrorCode::AlreadyVoted));
    let t = store.tally().unwrap();
    assert_eq!(t.ballots, 1);
    assert_consistent(&t);
}

#[test]
fn refused_votes_change_nothing() {
    let (_db, store) = fresh_store(StoreConfig::default());
    let creds = setup(&store, 3);
    let a = admin();
    let v1 = store.authenticate_voter("S1", &creds[0]).unwrap();

    // Not open yet.
    assert_eq!(
        store.cast_vote(&v1, &srn("C1")).unwrap_err().code(),
        ErrorCode::ElectionNotOpen
    );
    assert_eq!(
        store.eligibility(&v1).unwrap(),
        Eligibility::ElectionNotOpen
    );
    store.open_election(&a).unwrap();
    let before = store.tally().unwrap();

    // Unknown candidate.
    assert_eq!(
        store.cast_vote(&v1, &srn("C9")).unwrap_err().code(),
        ErrorCode::UnknownCandidate
    );
    // Removed after signing in.
    let v2 = store.authenticate_voter("S2", &creds[1]).unwrap();
    store.remove_voter(&a, &srn("S2")).unwrap();
    assert_eq!(
        store.cast_vote(&v2, &srn("C1")).unwrap_err().code(),
        ErrorCode::NotEligible
    );
    assert_eq!(store.eligibility(&v2).unwrap(), Eligibility::NotOnRoll);
    // Duplicate SRN.
    let dup = NewVoter::parse("s1", "Other", "Person", None).unwrap();
    assert_eq!(
        store.add_voter(&a, &dup).unwrap_err().code(),
        ErrorCode::Duplicate
    );
    // Candidates are frozen once open.
    let late = Candidate::parse("C3", "Late", None).unwrap();
    assert_eq!(
        store.add_candidate(&a, &late).unwrap_err().code(),
        ErrorCode::WrongState
    );
    assert_eq!(
        store.remove_candidate(&a, &srn("C1")).unwrap_err().code(),
        ErrorCode::WrongState
    );

    let after = store.tally().unwrap();
    assert_eq!(after.ballots, before.ballots);
    assert_eq!(after.candidates, before.candidates);
    assert_eq!(after.voted, 0);

    // A voter who voted cannot be removed; after close nobody votes.
    store.cast_vote(&v1, &srn("C1")).unwrap();
    assert_eq!(
        store.remove_voter(&a, &srn("S1")).unwrap_err().code(),
        ErrorCode::AlreadyVoted
    );
    store.close_election(&a).unwrap();
    let v3 = store.authenticate_voter("S3", &creds[2]).unwrap();
    assert_eq!(
        store.cast_vote(&v3, &srn("C1")).unwrap_err().code(),
        ErrorCode::ElectionNotOpen
    );
    assert_eq!(
        store
            .add_voter(&a, &NewVoter::parse("S9", "A", "B", None).unwrap())
            .unwrap_err()
            .code(),
        ErrorCode::WrongState
    );
    assert_eq!(
        store.open_election(&a).unwrap_err().code(),
        ErrorCode::WrongState
    );
    let t = store.tally().unwrap();
    assert_eq!(t.ballots, 1);
    assert_consistent(&t);
}

#[test]
fn wrong_and_unknown_credentials_look_alike_and_lock_after_five() {
    let config = StoreConfig {
        login: LoginPolicy {
            max_failures: 5,
            lockout: std::time::Duration::from_secs(900),
        },
        ..StoreConfig::default()
    };
    let (_db, store) = fresh_store(config);
    let creds = setup(&store, 2);
    let wrong = Secret::new("AAAAA-AAAAA-AAAAA-AAAAA");
    for _ in 0..4 {
        assert_eq!(
            store.authenticate_voter("S1", &wrong).unwrap_err().code(),
            ErrorCode::BadCredentials
        );
        assert_eq!(
            store
                .authenticate_voter("NOBODY", &wrong)
                .unwrap_err()
                .code(),
            ErrorCode::BadCredentials
        );
    }
    // The fifth failure locks, for a real and an unknown SRN alike.
    assert_eq!(
        store.authenticate_voter("S1", &wrong).unwrap_err().code(),
        ErrorCode::LockedOut
    );
    assert_eq!(
        store
            .authenticate_voter("NOBODY", &wrong)
            .unwrap_err()
            .code(),
        ErrorCode::LockedOut
    );
    // Locked means locked, even with the right credential.
    assert_eq!(
        store
            .authenticate_voter("S1", &creds[0])
            .unwrap_err()
            .code(),
        ErrorCode::LockedOut
    );
    // Other accounts are unaffected; a reset credential unlocks.
    store
        .authenticate_voter("s2", &creds[1])
        .expect("S2 still signs in");
    let fresh = store.reset_credential(&admin(), &srn("S1")).unwrap();
    store
        .authenticate_voter("S1", &fresh)
        .expect("reset unlocks");
    assert_eq!(
        store
            .authenticate_voter("S1", &creds[0])
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
}

#[test]
fn admins_sign_in_with_their_password_only() {
    let (_db, store) = fresh_store(StoreConfig::default());
    let name = AdminName::parse("Returning.Officer").unwrap();
    let pw = Secret::new("a long enough password");
    store.create_admin(&name, &pw).unwrap();
    assert_eq!(
        store.create_admin(&name, &pw).unwrap_err().code(),
        ErrorCode::Duplicate
    );
    assert_eq!(
        store
            .create_admin(&AdminName::parse("x").unwrap(), &Secret::new("short"))
            .unwrap_err()
            .code(),
        ErrorCode::InvalidInput
    );
    let s = store.authenticate_admin("returning.officer", &pw).unwrap();
    assert_eq!(s.name().as_str(), "returning.officer");
    assert_eq!(
        store
            .authenticate_admin("returning.officer", &Secret::new("nope nope nope"))
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
    assert_eq!(
        store.authenticate_admin("ghost", &pw).unwrap_err().code(),
        ErrorCode::BadCredentials
    );
}

#[test]
fn import_puts_all_voters_on_the_roll_or_none() {
    let (_db, store) = fresh_store(StoreConfig::default());
    let a = admin();
    store
        .add_voter(&a, &NewVoter::parse("EXISTING", "E", "X", None).unwrap())
        .unwrap();
    let batch: Vec<NewVoter> = (0..300)
        .map(|i| NewVoter::parse(&format!("IMP{i}"), "Imported", "Voter", None).unwrap())
        .collect();

    // One clash with the roll: nothing is imported.
    let mut clashing = batch.clone();
    clashing.push(NewVoter::parse("existing", "E", "X", None).unwrap());
    let err = store
        .import_voters(&a, &clashing, &mut |_, _| {})
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Duplicate);
    assert!(err.to_string().contains("EXISTING"), "{err}");
    // A duplicate inside the list: nothing is imported either.
    let mut twice = batch.clone();
    twice.push(batch[7].clone());
    assert_eq!(
        store
            .import_voters(&a, &twice, &mut |_, _| {})
            .unwrap_err()
            .code(),
        ErrorCode::InvalidInput
    );
    assert_eq!(store.election_status().unwrap().voters, 1);

    let mut last = (0, 0);
    let imported = store
        .import_voters(&a, &batch, &mut |d, t| last = (d, t))
        .unwrap();
    assert_eq!(last, (300, 300));
    assert_eq!(imported.len(), 300);
    assert_eq!(store.election_status().unwrap().voters, 301);
    let v = &imported[123];
    store
        .authenticate_voter(v.srn.as_str(), &v.credential)
        .expect("imported credential works");
    let roll = store.list_voters(&a).unwrap();
    assert_eq!(roll.len(), 301);
    assert!(roll.iter().all(|v| !v.voted));
}

/// Resetting a leaked credential also shuts out whoever had already signed in
/// with it: their session can no longer vote, the new credential can.
#[test]
fn a_credential_reset_ends_the_old_sessions_right_to_vote() {
    let (_db, store) = fresh_store(StoreConfig::default());
    let creds = setup(&store, 2);
    store.open_election(&admin()).unwrap();
    let thief = store.authenticate_voter("S1", &creds[0]).unwrap();
    let fresh = store.reset_credential(&admin(), &srn("S1")).unwrap();
    let refused = store.cast_vote(&thief, &srn("C1")).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::BadCredentials);
    assert!(refused.to_string().contains("sign in again"), "{refused}");
    assert_eq!(store.tally().unwrap().ballots, 0);

    let owner = store.authenticate_voter("S1", &fresh).unwrap();
    store.cast_vote(&owner, &srn("C2")).unwrap();
    // Once voted, the stale session hears "already voted", like anyone else.
    assert_eq!(
        store.cast_vote(&thief, &srn("C1")).unwrap_err().code(),
        ErrorCode::AlreadyVoted
    );
    // In a batch too: many stale and fresh sessions at once.
    let s2_stale = store.authenticate_voter("S2", &creds[1]).unwrap();
    let s2_fresh_cred = store.reset_credential(&admin(), &srn("S2")).unwrap();
    let s2_fresh = store.authenticate_voter("S2", &s2_fresh_cred).unwrap();
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (store, session) = (&store, if i % 2 == 0 { &s2_stale } else { &s2_fresh });
                scope.spawn(move || store.cast_vote(session, &srn("C1")).map_err(|e| e.code()))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    let tally = store.tally().unwrap();
    assert_eq!((tally.ballots, tally.voted), (2, 2));
}
