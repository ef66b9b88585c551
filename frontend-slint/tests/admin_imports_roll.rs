//! An admin imports a CSV roll: progress while it runs, a summary after, and
//! the credentials in a new file readable only by its owner.

mod support;

use support::*;
use voting_core::Secret;
use voting_testkit::TestServer;

#[test]
fn an_admin_imports_a_roll_and_gets_a_private_credentials_file() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let roll = dir.path().join("roll.csv");
    std::fs::write(
        &roll,
        "srn,first_name,last_name,dob\nS1,Alan,Turing,1912-06-23\nS2,Edsger,Dijkstra,\nS3,Barbara,Liskov,1939-11-07\n",
    )
    .expect("write roll");
    let out = dir.path().join("credentials.csv");
    let ui = signed_in_admin(&server);
    wait_until(&ui, "the main screen", |ui| {
        shows(ui, "Election state: setup")
    });

    type_into(
        &ui,
        "CSV file (srn,first_name,last_name,dob)",
        &roll.display().to_string(),
    );
    type_into(
        &ui,
        "Write credentials to (new file)",
        &out.display().to_string(),
    );
    press(&ui, "Import voters");
    wait_until(&ui, "the summary", |ui| {
        shows(ui, "Import result: 3 voters imported")
    });
    wait_until(&ui, "the roll", |ui| shows(ui, "S3 has not voted"));

    let text = std::fs::read_to_string(&out).expect("credentials file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "srn,first_name,last_name,credential");
    assert_eq!(lines.len(), 4);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let s2 = lines[2].rsplit(',').next().expect("credential");
    server
        .client()
        .login_voter("S2", &Secret::new(s2))
        .expect("an imported credential works");

    // Importing again into the same file is refused before anything is sent.
    press(&ui, "Import voters");
    wait_until(&ui, "the refusal", |ui| shows(ui, "already exists"));
    assert_eq!(server.store.tally().expect("tally").voters, 3);
}
