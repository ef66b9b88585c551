//! The worst day: races across instances, every op × every role, brute force,
//! odd but valid data, old TLS versions. Real MariaDB, real TLS on loopback.

use std::time::{Duration, Instant};

use voting_core::{
    Candidate, ElectionState, ErrorCode, NewVoter, ResultsPolicy, Role, Secret, Srn,
};
use voting_net::{Client, NetError, Op, Request, ServerConfig};
use voting_testkit::{trusted_admin, TestServer, ADMIN_NAME, ADMIN_PASSWORD};

/// 100 voters × 10 simultaneous connections each, spread over two instances.
/// Voters race in waves of 20 (200 connections at once): each voter's ten
/// attempts are simultaneous, which is the race; the waves keep the TLS
/// handshakes of a loaded 2-core machine within their timeouts.
#[test]
fn a_thousand_racing_attempts_by_a_hundred_voters_make_a_hundred_ballots() {
    let server = TestServer::start();
    let creds = server.seed(3, 100);
    server.open();
    let other = server.second_instance(ServerConfig::default());
    let mut outcomes: Vec<Result<(), ErrorCode>> = Vec::new();
    for (wave, voters) in creds.chunks(20).enumerate() {
        let barrier = std::sync::Barrier::new(voters.len() * 10);
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            for (v, (srn, credential)) in voters.iter().enumerate() {
                for attempt in 0..10 {
                    let (server, other, barrier) = (&server, &other, &barrier);
                    handles.push(scope.spawn(move || {
                        let addr = if attempt % 2 == 0 {
                            server.addr()
                        } else {
                            format!("localhost:{}", other.local_addr().port())
                        };
                        // Setting up is not the race: on a loaded machine a
                        // handshake may time out, so it gets a few tries.
                        let signed_in = (0..3)
                            .map(|_| {
                                let mut c = Client::connect(&addr, &server.client_config())?;
                                c.login_voter(srn, credential)?;
                                Ok::<_, NetError>(c)
                            })
                            .find_map(Result::ok);
                        let choice = 1 + (wave + v + attempt) % 3;
                        let candidate: Srn = format!("C{choice}").parse().unwrap();
                        // Every thread reaches the barrier, whatever happened, so
                        // a failed set-up fails the test instead of hanging it.
                        barrier.wait();
                        let mut c = signed_in.ok_or(ErrorCode::ConnectionFailed)?;
                        c.cast(&candidate).map(drop).map_err(|e| e.code())
                    }));
                }
            }
            outcomes.extend(handles.into_iter().map(|h| h.join().unwrap()));
        });
    }
    let won = outcomes.iter().filter(|o| o.is_ok()).count();
    let other_errors: Vec<_> = outcomes
        .iter()
        .filter_map(|o| o.err())
        .filter(|c| *c != ErrorCode::AlreadyVoted)
        .collect();
    assert_eq!(outcomes.len(), 1000);
    assert_eq!(
        (won, other_errors.len()),
        (100, 0),
        "unexpected: {other_errors:?}"
    );
    let tally = server.store.tally().unwrap();
    let sum: u64 = tally.candidates.iter().map(|c| c.votes).sum();
    assert_eq!((tally.ballots, sum, tally.voted), (100, 100, 100));
}

/// What the test expects of each op, written independently of `Op::access`.
/// A new op without a line here fails the test.
fn expected_roles(op: Op) -> Option<&'static [Role]> {
    use Role::*;
    let all: &[Role] = &[Anonymous, Voter, Admin];
    let expected: &[(&str, &[Role])] = &[
        ("hello", all),
        ("login_admin", all),
        ("login_voter", all),
        ("logout", all),
        ("verify", all),
        ("unsubscribe", all),
        ("tally", &[Admin]), // results after close, election open
        ("subscribe", &[Admin]),
        ("status", &[Voter, Admin]),
        ("candidates", &[Voter, Admin]),
        ("eligibility", &[Voter]),
        ("cast", &[Voter]),
        ("voter_add", &[Admin]),
        ("voter_remove", &[Admin]),
        ("voter_list", &[Admin]),
        ("voter_reset_credential", &[Admin]),
        ("import_begin", &[Admin]),
        ("import_rows", &[Admin]),
        ("import_commit", &[Admin]),
        ("import_abort", &[Admin]),
        ("candidate_add", &[Admin]),
        ("candidate_remove", &[Admin]),
        ("election_open", &[Admin]),
        ("election_close", &[Admin]),
        ("audit", &[Admin]),
        ("publication", &[Admin]), // wrong_state while open, but not forbidden
    ];
    expected
        .iter()
        .find(|(name, _)| *name == op.name())
        .map(|(_, roles)| *roles)
}

/// A well-formed request for each op (exhaustive: a new op must be added here).
fn sample(op: Op) -> Request {
    let voter = NewVoter::parse("X1", "Matrix", "Voter", None).unwrap();
    match op {
        Op::Hello => Request::Hello { version: 1 },
        Op::LoginAdmin => Request::LoginAdmin {
            name: "nobody".into(),
            password: "wrong password".into(),
        },
        Op::LoginVoter => Request::LoginVoter {
            srn: "NOBODY".into(),
            credential: "AAAAA".into(),
        },
        Op::Logout => Request::Logout,
        Op::Verify => Request::Verify {
            receipt: "AAAA-BBBB".into(),
        },
        Op::Tally => Request::Tally,
        Op::Subscribe => Request::Subscribe,
        Op::Unsubscribe => Request::Unsubscribe,
        Op::Status => Request::Status,
        Op::Candidates => Request::Candidates,
        Op::Eligibility => Request::Eligibility,
        Op::Cast => Request::Cast {
            candidate: "C404".into(),
        },
        Op::VoterAdd => Request::VoterAdd { voter },
        Op::VoterRemove => Request::VoterRemove {
            srn: "X404".parse().unwrap(),
        },
        Op::VoterList => Request::VoterList,
        Op::VoterResetCredential => Request::VoterResetCredential {
            srn: "X404".parse().unwrap(),
        },
        Op::ImportBegin => Request::ImportBegin,
        Op::ImportRows => Request::ImportRows {
            voters: vec![voter],
        },
        Op::ImportCommit => Request::ImportCommit,
        Op::ImportAbort => Request::ImportAbort,
        Op::CandidateAdd => Request::CandidateAdd {
            candidate: Candidate::parse("C9", "Late", None).unwrap(),
        },
        Op::CandidateRemove => Request::CandidateRemove {
            srn: "C404".parse().unwrap(),
        },
        Op::ElectionOpen => Request::ElectionOpen,
        Op::ElectionClose => Request::ElectionClose,
        Op::Audit => Request::Audit {
            after: 0,
            limit: Some(1),
        },
        Op::Publication => Request::Publication,
    }
}

#[test]
fn every_operation_is_allowed_exactly_to_the_roles_it_names() {
    let server = TestServer::start_with(ServerConfig {
        results: ResultsPolicy::AfterClose,
        ..ServerConfig::default()
    });
    let creds = server.seed(1, 2);
    server.open();
    let sign_in = |c: &mut Client, role: Role| match role {
        Role::Anonymous => drop(c.logout().unwrap()),
        Role::Voter => drop(c.login_voter(&creds[0].0, &creds[0].1).unwrap()),
        Role::Admin => drop(
            c.login_admin(ADMIN_NAME, &Secret::new(ADMIN_PASSWORD))
                .unwrap(),
        ),
    };
    let mut table = Vec::new();
    for role in [Role::Anonymous, Role::Voter, Role::Admin] {
        let mut c = server.client();
        sign_in(&mut c, role);
        for op in Op::ALL {
            // Closing would change what later cells see; it is checked last.
            if op == Op::ElectionClose {
                continue;
            }
            let allowed = expected_roles(op)
                .unwrap_or_else(|| panic!("no expected rule for op {} in this test", op.name()));
            let outcome = c.request(&sample(op));
            let forbidden = matches!(
                &outcome,
                Err(NetError::Remote {
                    code: ErrorCode::Forbidden,
                    ..
                })
            );
            if let Err(e) = &outcome {
                assert!(
                    e.connection_survives(),
                    "{} as {role:?} broke the connection: {e}",
                    op.name()
                );
            }
            table.push((op.name(), role, !forbidden));
            assert_eq!(
                !forbidden,
                allowed.contains(&role),
                "{} as {role:?}: {outcome:?}",
                op.name()
            );
            if matches!(op, Op::Logout | Op::LoginAdmin | Op::LoginVoter) {
                sign_in(&mut c, role);
            }
        }
        let close = c.request(&sample(Op::ElectionClose));
        let forbidden = matches!(
            &close,
            Err(NetError::Remote {
                code: ErrorCode::Forbidden,
                ..
            })
        );
        assert_eq!(
            !forbidden,
            role == Role::Admin,
            "election_close as {role:?}"
        );
    }
    assert_eq!(table.len(), 3 * (Op::ALL.len() - 1));
    // Nobody but the admin's cells changed anything a voter could see.
    assert_eq!(server.store.tally().unwrap().ballots, 0);
    assert_eq!(
        server.store.election_state().unwrap(),
        ElectionState::Closed
    );
}

#[test]
fn a_voter_cannot_act_for_another_voter() {
    let server = TestServer::start();
    let creds = server.seed(1, 2);
    server.open();
    let mut alice = server.client();
    // Her own credential does not open someone else's account.
    assert_eq!(
        alice
            .login_voter(&creds[1].0, &creds[0].1)
            .unwrap_err()
            .code(),
        ErrorCode::BadCredentials
    );
    alice.login_voter(&creds[0].0, &creds[0].1).unwrap();
    let bob: Srn = creds[1].0.parse().unwrap();
    assert_eq!(
        alice.remove_voter(&bob).unwrap_err().code(),
        ErrorCode::Forbidden
    );
    assert_eq!(
        alice.reset_credential(&bob).unwrap_err().code(),
        ErrorCode::Forbidden
    );
    alice.cast(&"C1".parse().unwrap()).unwrap();
    let roll = server.store.list_voters(&trusted_admin()).unwrap();
    let voted: Vec<(String, bool)> = roll.iter().map(|v| (v.srn.to_string(), v.voted)).collect();
    assert_eq!(voted, [("S1".to_string(), true), ("S2".to_string(), false)]);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn unknown_and_known_accounts_fail_alike_in_code_and_time() {
    let server = TestServer::start();
    let creds = server.seed(1, 40);
    let wrong = Secret::new("AAAAA-AAAAA-AAAAA-AAAAA");
    let mut c = server.client();
    let (mut unknown, mut known) = (Vec::new(), Vec::new());
    for (i, (srn, _)) in creds.iter().enumerate() {
        // Alternate, so drift in machine load hits both series alike.
        let started = Instant::now();
        let e = c.login_voter(&format!("U{i}"), &wrong).unwrap_err();
        unknown.push(started.elapsed());
        assert_eq!(e.code(), ErrorCode::BadCredentials);
        let started = Instant::now();
        let e = c.login_voter(srn, &wrong).unwrap_err();
        known.push(started.elapsed());
        assert_eq!(e.code(), ErrorCode::BadCredentials);
    }
    let (u, k) = (median(unknown), median(known));
    println!("median bad_credentials time: unknown SRN {u:?}, wrong credential {k:?}");
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    assert!((0.6..1.6).contains(&ratio), "unknown {u:?} vs known {k:?}");
}

#[test]
fn odd_but_valid_names_and_a_thousand_candidates_round_trip_intact() {
    let server = TestServer::start();
    let mut admin = server.admin();
    let names = [
        "O'Brien \"The Quote\"",
        "100% \\ back\\slash; DROP TABLE voters; --",
        "Zoë 🗳️ Ünïcødé",
        "مرشح عربي",
        "עברית RTL",
    ];
    let long_srn = "A".repeat(32);
    for (i, name) in names.iter().enumerate() {
        admin
            .add_candidate(&Candidate::parse(&format!("Q{i}"), name, Some(name)).unwrap())
            .unwrap();
        admin
            .add_voter(&NewVoter::parse(&format!("V{i}"), name, name, None).unwrap())
            .unwrap();
    }
    admin
        .add_voter(&NewVoter::parse(&long_srn, "Long", "Srn", None).unwrap())
        .unwrap();
    let back = admin.candidates().unwrap();
    for (i, name) in names.iter().enumerate() {
        let c = back
            .iter()
            .find(|c| c.srn.as_str() == format!("Q{i}"))
            .unwrap();
        assert_eq!(
            (c.name.as_str(), c.affiliation.as_deref()),
            (*name, Some(*name))
        );
    }
    let roll = admin.voters().unwrap();
    assert!(roll.iter().any(|v| v.srn.as_str() == long_srn));
    assert!(names
        .iter()
        .all(|n| roll.iter().any(|v| v.first_name == *n && v.last_name == *n)));

    for i in 0..1000 {
        let name = format!("Candidate {i} — {}", names[i % names.len()]);
        let c = Candidate::parse(&format!("K{i:04}"), &name, None).unwrap();
        server.store.add_candidate(&trusted_admin(), &c).unwrap();
    }
    let tally = admin.tally().unwrap();
    assert_eq!(tally.candidates.len(), 1005);
    assert_eq!(tally.candidates.last().map(|c| c.srn.as_str()), Some("Q4"));
    assert!(tally
        .candidates
        .iter()
        .any(|c| c.name == format!("Candidate 999 — {}", names[4])));
}

#[test]
fn an_election_with_no_candidates_shows_an_empty_tally_and_cannot_open() {
    let server = TestServer::start();
    let mut admin = server.admin();
    let tally = admin.tally().unwrap();
    assert!(tally.candidates.is_empty());
    assert_eq!(tally.ballots, 0);
    assert_eq!(
        admin.open_election().unwrap_err().code(),
        ErrorCode::WrongState
    );
}

#[test]
fn the_server_speaks_tls_1_2_and_1_3_only() {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode, SslVersion};
    let server = TestServer::start();
    let addr = server.handle().local_addr();
    let handshake = |version: SslVersion| {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.set_min_proto_version(Some(version)).unwrap();
        b.set_max_proto_version(Some(version)).unwrap();
        // Let the client offer old versions at all; the server must refuse them.
        b.set_security_level(0);
        b.set_cipher_list("ALL:@SECLEVEL=0").unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        b.build()
            .connect("localhost", tcp)
            .map(|s| s.ssl().version_str().to_string())
            .map_err(|e| eprintln!("handshake {version:?}: {e}"))
    };
    assert_eq!(
        handshake(SslVersion::TLS1_3).ok().as_deref(),
        Some("TLSv1.3")
    );
    assert_eq!(
        handshake(SslVersion::TLS1_2).ok().as_deref(),
        Some("TLSv1.2")
    );
    assert!(handshake(SslVersion::TLS1_1).is_err(), "TLS 1.1 accepted");
    assert!(handshake(SslVersion::TLS1).is_err(), "TLS 1.0 accepted");
    let mut c = server.client();
    assert_eq!(c.tally().unwrap().ballots, 0);
}
