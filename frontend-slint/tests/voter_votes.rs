//! A voter signs in, chooses, confirms, and gets a receipt that the server
//! confirms; then checks it on the "check a receipt" screen.

mod support;

use frontend_slint::voter::{self, VoterOptions};
use frontend_slint::VoterWindow;
use support::*;
use voting_testkit::TestServer;

#[test]
fn a_voter_signs_in_chooses_confirms_and_keeps_a_verifiable_receipt() {
    let server = TestServer::start();
    let credentials = server.seed(2, 2);
    server.open();
    headless();
    let ui = VoterWindow::new().expect("window");
    voter::init(
        &ui,
        VoterOptions {
            server: Some(server.addr()),
            ca: Some(server.certs.ca()),
            ..VoterOptions::default()
        },
    )
    .expect("init");
    show(&ui);

    // Given a server and a CA, the app connects by itself and asks who you are.
    wait_until(&ui, "the sign-in form", |ui| find(ui, "Your SRN").is_some());
    let (srn, credential) = &credentials[0];
    type_into(&ui, "Your SRN", srn);
    type_into(&ui, "Your credential", credential.expose());
    press(&ui, "Sign in");
    wait_until(&ui, "the ballot", |ui| {
        shows(ui, "Eligibility: You may vote now.")
    });

    press(&ui, "Choose Candidate 2 (C2)");
    assert_eq!(
        element(&ui, "Choose Candidate 2 (C2)").accessible_checked(),
        Some(true)
    );
    press(&ui, "Vote");
    wait_until(&ui, "the confirmation", |ui| {
        find(ui, "Cast my vote").is_some()
    });
    assert!(shows(&ui, "cannot be changed"));
    press(&ui, "Cast my vote");

    wait_until(&ui, "the receipt", |ui| find(ui, "Receipt").is_some());
    let receipt = value(&ui, "Receipt");
    assert!(receipt.len() >= 20, "receipt {receipt:?}");
    let check = server
        .client()
        .verify(&receipt)
        .expect("the receipt verifies");
    assert_eq!(check.candidate.as_str(), "C2");
    assert_eq!(server.store.tally().expect("tally").ballots, 1);
    // "Copy" selects the code and hands it to the platform's clipboard.
    press(&ui, "Copy Receipt");

    // Anyone can check a receipt; this one counts for C2.
    press(&ui, "Check a receipt");
    type_into(&ui, "Receipt to check", &receipt.to_lowercase());
    press(&ui, "Check");
    wait_until(&ui, "the receipt check", |ui| {
        shows(ui, "Receipt check: Counted")
    });
    assert!(shows(&ui, "for candidate C2 (Candidate 2)"));
    assert!(shows(&ui, "as ballot #1:"));
    assert!(shows(&ui, "The ballot chain is intact (1 ballots)."));

    // This server shows results live.
    press(&ui, "Back");
    press(&ui, "Results");
    wait_until(&ui, "the live results", |ui| {
        shows(ui, "Votes for C2: 1 (100.0 %)")
    });
    assert!(shows(&ui, "Turnout: 1 of 2 voters (50.0 %)"));
}
