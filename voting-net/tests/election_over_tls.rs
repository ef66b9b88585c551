//! A whole election through the real server and client, over TLS on loopback,
//! against a real database.

use std::time::{Duration, Instant};

use voting_core::{
    Candidate, ElectionState, Eligibility, ErrorCode, NewVoter, ResultsPolicy, Secret,
};
use voting_net::{Client, Event, ImportStage, NetError, ServerConfig};
use voting_testkit::TestServer;

fn code<T: std::fmt::Debug>(r: Result<T, NetError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

#[test]
fn an_admin_and_voters_run_an_election_end_to_end() {
    let server = TestServer::start();
    let mut admin = server.admin();
    admin
        .add_candidate(&Candidate::parse("C1", "Ada Lovelace", Some("Analytical")).unwrap())
        .unwrap();
    admin
        .add_candidate(&Candidate::parse("C2", "Grace Hopper", None).unwrap())
        .unwrap();
    let alan = admin
        .add_voter(&NewVoter::parse("s1", "Alan", "Turing", Some("1912-06-23")).unwrap())
        .unwrap();
    let edsger = admin
        .add_voter(&NewVoter::parse("S2", "Edsger", "Dijkstra", None).unwrap())
        .unwrap();
    assert_eq!(admin.status().unwrap().state, ElectionState::Setup);

    // Before the election opens a voter may sign in but not vote.
    let mut voter = server.client();
    voter.login_voter("S1", &alan).unwrap();
    assert_eq!(voter.eligibility().unwrap(), Eligibility::ElectionNotOpen);
    assert_eq!(
        code(voter.cast(&"C1".parse().unwrap())),
        ErrorCode::ElectionNotOpen
    );

    assert_eq!(admin.open_election().unwrap().state, ElectionState::Open);
    assert_eq!(
        code(admin.add_candidate(&Candidate::parse("C3", "Late", None).unwrap())),
        ErrorCode::WrongState
    );

    assert_eq!(voter.eligibility().unwrap(), Eligibility::Eligible);
    let names: Vec<String> = voter
        .candidates()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Grace Hopper"]);
    assert_eq!(
        code(voter.cast(&"C9".parse().unwrap())),
        ErrorCode::UnknownCandidate
    );
    let receipt = voter.cast(&"c1".parse().unwrap()).unwrap();
    assert_eq!(receipt.candidate.as_str(), "C1");
    assert_eq!(
        code(voter.cast(&"C2".parse().unwrap())),
        ErrorCode::AlreadyVoted
    );
    assert_eq!(voter.eligibility().unwrap(), Eligibility::AlreadyVoted);

    // Edsger types his credential in lower case without dashes: still accepted.
    let mut second = server.client();
    let typed = edsger.expose().replace('-', "").to_lowercase();
    second.login_voter("s2", &Secret::new(typed)).unwrap();
    second.cast(&"C2".parse().unwrap()).unwrap();

    // Anyone holding the receipt can check it, without signing in.
    let mut anonymous = server.client();
    let check = anonymous.verify(receipt.receipt.expose()).unwrap();
    assert_eq!(
        (check.ballot_id, check.candidate.as_str()),
        (receipt.ballot_id, "C1")
    );
    assert_eq!(
        code(anonymous.verify("AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG")),
        ErrorCode::NotFound
    );

    let status = admin.close_election().unwrap();
    assert_eq!(
        (status.state, status.voted, status.voters),
        (ElectionState::Closed, 2, 2)
    );
    let tally = anonymous.tally().unwrap();
    let counts: Vec<(String, u64)> = tally
        .candidates
        .iter()
        .map(|c| (c.srn.to_string(), c.votes))
        .collect();
    assert_eq!(counts, [("C1".to_string(), 1), ("C2".to_string(), 1)]);
    assert_eq!(tally.ballots, 2);

    let actions: Vec<String> = admin
        .audit_log(0, None)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for expected in [
        "candidate.add",
        "voter.add",
        "election.open",
        "election.close",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
}

#[test]
fn each_role_may_do_only_its_own_operations() {
    let server = TestServer::start();
    let creds = server.seed(1, 1);
    server.open();
    let mut anonymous = server.client();
    assert_eq!(
        code(anonymous.cast(&"C1".parse().unwrap())),
        ErrorCode::Forbidden
    );
    assert_eq!(code(anonymous.voters()), ErrorCode::Forbidden);
    assert_eq!(code(anonymous.status()), ErrorCode::Forbidden);
    // The connection survives refusals.
    assert_eq!(anonymous.tally().unwrap().ballots, 0);

    let mut voter = server.client();
    voter.login_voter(&creds[0].0, &creds[0].1).unwrap();
    assert_eq!(code(voter.close_election()), ErrorCode::Forbidden);
    assert_eq!(
        code(voter.add_voter(&NewVoter::parse("S9", "Eve", "Mallory", None).unwrap())),
        ErrorCode::Forbidden
    );
    assert_eq!(code(voter.audit_log(0, None)), ErrorCode::Forbidden);

    let mut admin = server.admin();
    assert_eq!(
        code(admin.cast(&"C1".parse().unwrap())),
        ErrorCode::Forbidden
    );
    voter.logout().unwrap();
    assert_eq!(
        code(voter.cast(&"C1".parse().unwrap())),
        ErrorCode::Forbidden
    );
    assert_eq!(server.store.tally().unwrap().ballots, 0);
}

#[test]
fn failed_sign_ins_look_alike_and_lock_the_account() {
    let server = TestServer::start();
    let creds = server.seed(1, 1);
    let mut c = server.client();
    let wrong = Secret::new("AAAAA-AAAAA-AAAAA-AAAAA");
    assert_eq!(
        code(c.login_voter("S404", &wrong)),
        ErrorCode::BadCredentials
    );
    for _ in 0..4 {
        assert_eq!(code(c.login_voter("S1", &wrong)), ErrorCode::BadCredentials);
    }
    let fifth = c.login_voter("S1", &wrong).unwrap_err();
    assert_eq!(fifth.code(), ErrorCode::LockedOut);
    assert!(fifth.to_string().contains("locked"), "{fifth}");
    // Now even the right credential is refused until the lock ends.
    assert_eq!(code(c.login_voter("S1", &creds[0].1)), ErrorCode::LockedOut);
}

#[test]
fn subscribers_see_every_vote_including_those_cast_through_another_instance() {
    let server = TestServer::start();
    let creds = server.seed(2, 3);
    server.open();
    let other = server.second_instance(ServerConfig::default());

    let mut watcher = server.client();
    assert_eq!(watcher.subscribe().unwrap().ballots, 0);
    let mut far_watcher = server.client_of(&other);
    far_watcher.subscribe().unwrap();

    for (i, (srn, credential)) in creds.iter().enumerate() {
        // Alternate instances: the broadcasters must notice each other's commits.
        let mut voter = if i % 2 == 0 {
            server.client_of(&other)
        } else {
            server.client()
        };
        voter.login_voter(srn, credential).unwrap();
        voter.cast(&"C1".parse().unwrap()).unwrap();
        for w in [&mut watcher, &mut far_watcher] {
            let started = Instant::now();
            let seen = wait_for_ballots(w, i as u64 + 1);
            assert!(seen, "ballot {} not pushed within 2 s", i + 1);
            assert!(started.elapsed() < Duration::from_secs(2));
        }
    }
    let mut admin = server.admin();
    admin.close_election().unwrap();
    let closed = loop {
        match watcher.next_event(Some(Duration::from_secs(2))).unwrap() {
            Some(Event::Tally { tally }) if tally.state == ElectionState::Closed => break tally,
            Some(_) => continue,
            None => panic!("no tally event after close"),
        }
    };
    assert_eq!(closed.votes_for(&"C1".parse().unwrap()), Some(3));
}

/// Waits up to 2 s for a tally event with at least `n` ballots.
fn wait_for_ballots(c: &mut Client, n: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match c.next_event(Some(left)).unwrap() {
            Some(Event::Tally { tally }) if tally.ballots >= n => return true,
            Some(_) => continue,
            None => return false,
        }
    }
    false
}

#[test]
fn with_results_after_close_only_admins_see_the_count_until_close() {
    let server = TestServer::start_with(ServerConfig {
        results: ResultsPolicy::AfterClose,
        ..ServerConfig::default()
    });
    let creds = server.seed(1, 1);
    server.open();
    let mut anonymous = server.client();
    assert_eq!(anonymous.server_info().results, ResultsPolicy::AfterClose);
    assert_eq!(code(anonymous.tally()), ErrorCode::Forbidden);
    assert_eq!(code(anonymous.subscribe()), ErrorCode::Forbidden);
    let mut voter = server.client();
    voter.login_voter(&creds[0].0, &creds[0].1).unwrap();
    assert_eq!(code(voter.tally()), ErrorCode::Forbidden);
    let mut admin = server.admin();
    assert_eq!(admin.tally().unwrap().state, ElectionState::Open);
    admin.close_election().unwrap();
    assert_eq!(anonymous.tally().unwrap().state, ElectionState::Closed);
}

#[test]
fn an_import_reports_progress_and_returns_every_credential() {
    let server = TestServer::start();
    let mut admin = server.admin();
    // Long names make several import_rows lines.
    let long = "N".repeat(100);
    let roll: Vec<NewVoter> = (0..700)
        .map(|i| NewVoter::parse(&format!("R{i:04}"), &long, &long, Some("2001-02-03")).unwrap())
        .collect();
    let mut uploads = 0;
    let mut last_hashed = 0;
    let imported = admin
        .import_voters(&roll, &mut |stage, done, total| {
            assert_eq!(total, 700);
            match stage {
                ImportStage::Uploading => uploads += 1,
                ImportStage::Hashing => last_hashed = done,
            }
        })
        .unwrap();
    assert_eq!(imported.len(), 700);
    assert!(uploads >= 2, "700 long rows fit in {uploads} line(s)?");
    assert_eq!(last_hashed, 700);
    let mut voter = server.client();
    voter
        .login_voter("R0042", &imported[42].credential)
        .unwrap();

    // A second import with one SRN already on the roll changes nothing.
    let again = vec![
        NewVoter::parse("NEW1", "A", "B", None).unwrap(),
        roll[0].clone(),
    ];
    assert_eq!(
        code(admin.import_voters(&again, &mut |_, _, _| {})),
        ErrorCode::Duplicate
    );
    assert_eq!(admin.voters().unwrap().len(), 700);
}

#[test]
fn two_server_instances_on_one_database_behave_as_one() {
    let server = TestServer::start();
    let creds = server.seed(2, 20);
    server.open();
    let other = server.second_instance(ServerConfig::default());
    let mut watchers = [server.client(), server.client_of(&other)];
    for w in &mut watchers {
        w.subscribe().unwrap();
    }
    // Every voter tries twice at once, once through each instance.
    let outcomes: Vec<Result<(), ErrorCode>> = std::thread::scope(|scope| {
        let handles: Vec<_> = creds
            .iter()
            .flat_map(|(srn, credential)| {
                [true, false].map(|first| {
                    let (server, other) = (&server, &other);
                    scope.spawn(move || {
                        let mut c = if first {
                            server.client()
                        } else {
                            server.client_of(other)
                        };
                        c.login_voter(srn, credential).unwrap();
                        c.cast(&"C2".parse().unwrap())
                            .map(drop)
                            .map_err(|e| e.code())
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let lost: Vec<_> = outcomes.iter().filter_map(|o| o.err()).collect();
    assert_eq!(won, 20);
    assert!(
        lost.iter().all(|c| *c == ErrorCode::AlreadyVoted),
        "{lost:?}"
    );
    let tally = server.store.tally().unwrap();
    assert_eq!((tally.ballots, tally.voted), (20, 20));
    // Each subscriber, whichever instance it is on, sees all 20 within a second.
    for w in &mut watchers {
        let started = Instant::now();
        assert!(wait_for_ballots(w, 20), "not all votes pushed");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
