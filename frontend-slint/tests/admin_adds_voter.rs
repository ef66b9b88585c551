//! An admin signs in, adds a voter, and sees the credential once; the
//! credential works; the roll shows the voter.

mod support;

use frontend_slint::admin::{self, AdminOptions};
use frontend_slint::AdminWindow;
use support::*;
use voting_core::Secret;
use voting_testkit::{TestServer, ADMIN_NAME, ADMIN_PASSWORD};

#[test]
fn an_admin_adds_a_voter_and_sees_the_credential_once() {
    let server = TestServer::start();
    let remember = tempfile::tempdir().expect("temp dir");
    let config = remember.path().join("voting").join("admin.json");
    headless();
    let ui = AdminWindow::new().expect("window");
    admin::init(
        &ui,
        AdminOptions {
            server: Some(server.addr()),
            ca: Some(server.certs.ca()),
            remember: Some(config.clone()),
            ..AdminOptions::default()
        },
    )
    .expect("init");
    show(&ui);

    // Server and CA are filled in from the options: name, password, Enter.
    assert_eq!(value(&ui, "Server (host:port)"), server.addr());
    type_into(&ui, "Admin name", ADMIN_NAME);
    type_into(&ui, "Password", ADMIN_PASSWORD);
    press(&ui, "Sign in");
    wait_until(&ui, "the main screen", |ui| {
        shows(ui, "Election state: setup")
    });
    let remembered = std::fs::read_to_string(&config).expect("server and CA remembered");
    assert!(remembered.contains(&server.addr()) && !remembered.contains(ADMIN_PASSWORD));

    type_into(&ui, "Voter SRN", "s42");
    type_into(&ui, "First name", "Grace");
    type_into(&ui, "Last name", "Hopper");
    press(&ui, "Add voter");
    wait_until(&ui, "the credential", |ui| find(ui, "Credential").is_some());
    let credential = value(&ui, "Credential");
    let mut voter = server.client();
    voter
        .login_voter("S42", &Secret::new(credential.clone()))
        .expect("the credential shown works");

    press(&ui, "Done");
    wait_until(&ui, "the roll", |ui| shows(ui, "S42 has not voted"));
    assert!(find(&ui, "Credential").is_none(), "shown only once");
    assert_eq!(value(&ui, "Voter SRN"), "", "the form is cleared");

    // A duplicate is refused with the server's words and code.
    type_into(&ui, "Voter SRN", "S42");
    type_into(&ui, "First name", "Grace");
    type_into(&ui, "Last name", "Hopper");
    press(&ui, "Add voter");
    wait_until(&ui, "the refusal", |ui| shows(ui, "(duplicate)"));
}
