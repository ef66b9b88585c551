//! An admin opens the election through its confirmation dialog, watches a vote
//! arrive on the live chart (pushed, not polled), closes the election, and
//! sees a lost connection in words with a way to reconnect.

mod support;

use support::*;
use voting_testkit::TestServer;

#[test]
fn an_admin_opens_watches_live_results_closes_and_sees_a_lost_connection() {
    let mut server = TestServer::start();
    let credentials = server.seed(2, 3);
    let ui = signed_in_admin(&server);
    // With a password given, the app signs in by itself.
    wait_until(&ui, "the main screen", |ui| {
        shows(ui, "Election state: setup")
    });

    press(&ui, "Candidates");
    wait_until(&ui, "the candidates", |ui| {
        find(ui, "Remove candidate C2").is_some()
    });
    assert_eq!(
        element(&ui, "Remove candidate C2").accessible_enabled(),
        Some(true)
    );

    // Escape cancels the confirmation; nothing happens.
    press(&ui, "Election");
    press(&ui, "Open the election");
    wait_until(&ui, "the confirmation", |ui| {
        find(ui, "Open election").is_some()
    });
    press_key(&ui, slint::platform::Key::Escape);
    wait_until(&ui, "the dialog to close", |ui| {
        find(ui, "Open election").is_none()
    });
    assert!(shows(&ui, "Election state: setup"));

    press(&ui, "Open the election");
    wait_until(&ui, "the confirmation", |ui| {
        find(ui, "Open election").is_some()
    });
    press(&ui, "Open election");
    wait_until(&ui, "the election to open", |ui| {
        shows(ui, "Election state: open")
    });

    // Once open, the ballot is fixed and the window says why.
    press(&ui, "Candidates");
    wait_until(&ui, "the candidates", |ui| {
        find(ui, "Remove candidate C2").is_some()
    });
    assert_eq!(
        element(&ui, "Remove candidate C2").accessible_enabled(),
        Some(false)
    );
    assert!(shows(&ui, "only before the election opens"));

    // A vote cast elsewhere shows up on the chart through the subscription.
    press(&ui, "Results");
    wait_until(&ui, "the chart", |ui| shows(ui, "Votes for C1: 0 (0.0 %)"));
    let mut voter = server.client();
    voter
        .login_voter(&credentials[0].0, &credentials[0].1)
        .expect("voter signs in");
    voter.cast(&"C1".parse().expect("srn")).expect("vote");
    wait_until(&ui, "the pushed tally", |ui| {
        shows(ui, "Votes for C1: 1 (100.0 %)")
    });
    assert!(shows(&ui, "Turnout: 1 of 3 voters (33.3 %)"));
    press(&ui, "Voters");
    wait_until(&ui, "the roll to say it changed", |ui| {
        shows(ui, "the roll has changed")
    });
    press(&ui, "Refresh the roll");
    wait_until(&ui, "the refreshed roll", |ui| shows(ui, "S1 has voted"));

    press(&ui, "Election");
    press(&ui, "Close the election");
    wait_until(&ui, "the confirmation", |ui| {
        find(ui, "Close election").is_some()
    });
    press(&ui, "Close election");
    wait_until(&ui, "the election to close", |ui| {
        shows(ui, "Election state: closed")
    });

    press(&ui, "Audit log");
    press(&ui, "Refresh the audit log");
    wait_until(&ui, "the audit log", |ui| shows(ui, "election.close"));

    // The server goes away: the next request says so, with a way to retry.
    server.stop();
    press(&ui, "Results");
    wait_until(&ui, "the live results to notice", |ui| {
        shows(ui, "Live results interrupted")
    });
    press(&ui, "Audit log");
    // Open connections close within about a second: keep refreshing, as a
    // person would, until the window says the connection is gone.
    wait_until(&ui, "the lost connection", |ui| {
        let lost = find(ui, "Reconnect").is_some();
        if !lost && ui.get_pending() == 0 {
            press(ui, "Refresh the audit log");
        }
        lost
    });
    assert!(shows(&ui, "(connection_failed)"), "{:?}", labels(&ui));
    press(&ui, "Reconnect");
    wait_until(&ui, "the retry to fail too", |ui| ui.get_pending() == 0);
    assert!(find(&ui, "Reconnect").is_some());
}
