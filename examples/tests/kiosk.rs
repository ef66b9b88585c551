//! The kiosk against a real server, driven like a polling station's keyboard:
//! voters one after another, mistakes included.

use voting_core::Secret;
use voting_examples::connect::Endpoint;
use voting_examples::kiosk::{run_kiosk, KioskScreen, KioskSummary};
use voting_testkit::TestServer;

/// Runs the kiosk on `keyboard` (one answer per line) until its end.
fn kiosk(server: &TestServer, keyboard: &str) -> anyhow::Result<(KioskSummary, String)> {
    let endpoint = Endpoint {
        server: server.addr(),
        config: server.client_config(),
    };
    let mut screen = Vec::new();
    let summary = run_kiosk(
        &endpoint,
        &mut keyboard.as_bytes(),
        &mut screen,
        KioskScreen::default(),
    )?;
    Ok((summary, String::from_utf8(screen)?))
}

/// The receipts the kiosk showed, in order, each with the seal shown under it.
fn receipts(screen: &str) -> Vec<(String, String)> {
    let mut lines = screen.lines();
    let mut found = Vec::new();
    while let Some(line) = lines.next() {
        if line.ends_with("Your receipt (write it down; it is shown only now):") {
            let receipt = lines.next().unwrap_or_default().trim().to_string();
            let seal = match lines.next() {
                Some(l) if l.starts_with("and your ballot's seal") => lines.next(),
                _ => None,
            };
            found.push((receipt, seal.unwrap_or_default().trim().to_string()));
        }
    }
    found
}

#[test]
fn voters_in_a_row_vote_and_mistakes_are_explained() -> anyhow::Result<()> {
    let server = TestServer::start();
    let voters = server.seed(2, 4);
    server.open();
    // S3 voted earlier, somewhere else.
    let mut elsewhere = server.client();
    elsewhere.login_voter("S3", &voters[2].1)?;
    elsewhere.cast(&"C2".parse()?)?;
    let credential = |i: usize| voters[i].1.expose().to_string();

    let keyboard = [
        // S1 votes for the first candidate, by number.
        "S1",
        &credential(0),
        "1",
        "yes",
        "",
        // S2 mistypes the credential.
        "S2",
        "AAAAA-BBBBB-CCCCC-DDDDD",
        // S3 has voted already.
        "S3",
        &credential(2),
        // S4 (in lower case) changes their mind once, then votes for C2 by SRN.
        "s4",
        &credential(3),
        "1",
        "no",
        "c2",
        "y",
        "",
    ]
    .join("\n")
        + "\n";
    let (summary, screen) = kiosk(&server, &keyboard)?;

    assert_eq!(
        summary,
        KioskSummary {
            ballots_cast: 2,
            left_without_voting: 2
        }
    );
    for expected in [
        "S1: you may vote now.",
        "Your vote for Candidate 1 (C1) is counted.",
        "That SRN and credential do not match.",
        "S3: you have already voted. Each voter votes once, and your ballot is counted.",
        "S4: you may vote now.",
        "Vote for Candidate 1 (C1)? This cannot be undone. Type yes to cast it: Not cast. Choose again.",
        "Your vote for Candidate 2 (C2) is counted.",
        "Kiosk closed. Ballots cast here: 2; voters who left without casting one: 2.",
    ] {
        assert!(screen.contains(expected), "{expected:?} not in:\n{screen}");
    }
    assert_eq!(
        screen
            .matches("This kiosk has forgotten your session.")
            .count(),
        4
    );

    // Each receipt the kiosk showed checks out, for the candidate chosen.
    let shown = receipts(&screen);
    assert_eq!(shown.len(), 2, "{screen}");
    let mut public = server.client();
    for ((receipt, seal), chosen) in shown.iter().zip(["C1", "C2"]) {
        let check = public.verify(receipt)?;
        assert_eq!(check.candidate.as_str(), chosen);
        assert!(
            check.seal.as_ref().is_some_and(|s| s.matches(seal)),
            "seal {seal:?} shown, {:?} on the server",
            check.seal
        );
    }
    let tally = public.tally()?;
    assert_eq!((tally.ballots, tally.voted), (3, 3));
    assert_eq!(tally.votes_for(&"C2".parse()?), Some(2));

    // S2 still may vote: the failed sign-in cost them nothing but a retry.
    let mut s2 = server.client();
    s2.login_voter("S2", &Secret::new(credential(1)))?;
    assert_eq!(s2.eligibility()?, voting_core::Eligibility::Eligible);
    Ok(())
}

#[test]
fn a_voter_may_leave_and_the_kiosk_ends_with_its_input() -> anyhow::Result<()> {
    let server = TestServer::start();
    let voters = server.seed(1, 2);
    server.open();

    // An SRN that cannot be one; S1 presses Enter for the credential, then
    // leaves at the menu; S2's turn is cut short.
    let keyboard = format!(
        "not an srn\nS1\n\nS1\n{}\n\nS2\n{}\n1\n",
        voters[0].1.expose(),
        voters[1].1.expose()
    );
    let (summary, screen) = kiosk(&server, &keyboard)?;

    assert!(screen.contains("'not an srn' is not an SRN"), "{screen}");
    assert!(
        screen.contains("No credential typed. Please start again."),
        "{screen}"
    );
    assert!(
        screen.contains("You left without voting; no vote was cast."),
        "{screen}"
    );
    assert!(
        screen.ends_with(
            "Type yes to cast it: \nNo vote was cast.\n\
         Kiosk closed. Ballots cast here: 0; voters who left without casting one: 2.\n"
        ),
        "{screen}"
    );
    assert_eq!(summary.ballots_cast, 0);
    assert_eq!(server.client().tally()?.ballots, 0);
    Ok(())
}
