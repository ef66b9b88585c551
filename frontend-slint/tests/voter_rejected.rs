//! A wrong credential is refused in words; the right one, before the election
//! opens, says the election is not open; results are not public yet. The
//! connection the server dropped while the voter was idle is replaced unseen.

mod support;

use frontend_slint::voter::{self, VoterOptions};
use frontend_slint::VoterWindow;
use std::time::Duration;
use support::*;

use voting_core::ResultsPolicy;
use voting_net::ServerConfig;
use voting_testkit::TestServer;

#[test]
fn a_rejected_credential_is_shown_and_an_unopened_election_is_said_in_words() {
    let server = TestServer::start_with(ServerConfig {
        results: ResultsPolicy::AfterClose,
        idle_timeout_anonymous: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let credentials = server.seed(1, 1);
    headless();
    let ui = VoterWindow::new().expect("window");
    voter::init(&ui, VoterOptions::default()).expect("init");
    show(&ui);

    // No CA given: the connect screen asks for it.
    type_into(&ui, "Server (host:port)", &server.addr());
    type_into(
        &ui,
        "CA certificate file",
        &server.certs.ca().display().to_string(),
    );
    press(&ui, "Connect");
    wait_until(&ui, "the sign-in form", |ui| find(ui, "Your SRN").is_some());
    assert!(shows(&ui, "results are published when the election closes"));
    // The voter takes their time: the server drops the idle connection.
    wait_until(&ui, "the idle connection to close", |_| {
        server.handle().active_connections() == 0
    });

    type_into(&ui, "Your SRN", "S1");
    type_into(&ui, "Your credential", "AAAAA-BBBBB-CCCCC-DDDDD");
    press(&ui, "Sign in");
    wait_until(&ui, "the refusal", |ui| shows(ui, "Error: "));
    assert!(shows(&ui, "(bad_credentials)"), "{:?}", labels(&ui));
    assert!(find(&ui, "Your SRN").is_some(), "still on the sign-in form");

    type_into(&ui, "Your credential", credentials[0].1.expose());
    press(&ui, "Sign in");
    wait_until(&ui, "the eligibility", |ui| shows(ui, "Eligibility: "));
    assert!(shows(&ui, "The election is not open"), "{:?}", labels(&ui));
    assert!(find(&ui, "Vote").is_none(), "no ballot to cast");
    assert!(!shows(&ui, "Error: "), "the error is gone once things work");

    press(&ui, "Results");
    wait_until(&ui, "the refusal", |ui| shows(ui, "not public yet"));
    assert!(shows(&ui, "forbidden"));
    press(&ui, "Back");
    assert!(shows(&ui, "Eligibility: "));
}
