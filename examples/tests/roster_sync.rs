//! The roster sync against a real server: what it prints, what the roll looks
//! like afterwards, and the credentials file it leaves.

use std::path::Path;

use voting_core::{Candidate, NewVoter, Secret, Voter};
use voting_examples::connect::Endpoint;
use voting_examples::roster_sync::{read_roll_csv, sync_roster, SyncMode};
use voting_testkit::{trusted_admin, TestServer};

/// The file an election office would keep: S2 has left, S4 married, S5 and
/// s6 are new.
const CSV: &str = "\
srn,first_name,last_name,dob
S1,Alan,Turing,1912-06-23
S4,Ada,King,
S5,Grace,Hopper,1906-12-09
s6,Donald,Knuth,
";

/// An open election whose roll has S1..S4; S3 has voted.
fn election() -> anyhow::Result<TestServer> {
    let server = TestServer::start();
    let admin = trusted_admin();
    let store = &server.store;
    store.add_candidate(&admin, &Candidate::parse("C1", "Ada Lovelace", None)?)?;
    let roll = [
        ("S1", "Alan", "Turing", Some("1912-06-23")),
        ("S2", "Edsger", "Dijkstra", None),
        ("S3", "Barbara", "Liskov", Some("1939-11-07")),
        ("S4", "Ada", "Lovelace", None),
    ];
    let mut credentials = Vec::new();
    for (srn, first, last, dob) in roll {
        credentials.push(store.add_voter(&admin, &NewVoter::parse(srn, first, last, dob)?)?);
    }
    store.open_election(&admin)?;
    let mut voter = server.client();
    voter.login_voter("S3", &credentials[2])?;
    voter.cast(&"C1".parse()?)?;
    Ok(server)
}

/// Runs the sync as the example does, returning what it printed.
fn sync(server: &TestServer, mode: &SyncMode) -> (anyhow::Result<()>, String) {
    let mut printed = Vec::new();
    let result = (|| {
        let wanted = read_roll_csv(CSV.as_bytes(), "roll.csv")?;
        let endpoint = Endpoint {
            server: server.addr(),
            config: server.client_config(),
        };
        let password = Secret::new(voting_testkit::ADMIN_PASSWORD);
        let mut client = endpoint.connect_admin(voting_testkit::ADMIN_NAME, &password)?;
        sync_roster(&mut client, &wanted, mode, &mut |_, _, _| {}, &mut printed).map(drop)
    })();
    (result, String::from_utf8_lossy(&printed).into_owned())
}

fn roll(server: &TestServer) -> anyhow::Result<Vec<Voter>> {
    Ok(server.admin().voters()?)
}

fn summary(roll: &[Voter]) -> Vec<String> {
    let summary = |v: &Voter| {
        format!(
            "{} {} {} voted={}",
            v.srn, v.first_name, v.last_name, v.voted
        )
    };
    roll.iter().map(summary).collect()
}

#[test]
fn a_dry_run_reports_every_difference_and_changes_nothing() -> anyhow::Result<()> {
    let server = election()?;
    let before = roll(&server)?;
    let audit_before = server.admin().audit_log(0, None)?.len();

    let (result, printed) = sync(&server, &SyncMode::DryRun);
    result?;

    assert_eq!(
        printed,
        "4 voters in the CSV, 4 on the server's roll (open election).\n\
         would add    S5 (Grace Hopper, born 1906-12-09)\n\
         would add    S6 (Donald Knuth)\n\
         would remove S2 (Edsger Dijkstra)\n\
         kept     S3 (Barbara Liskov, born 1939-11-07): not in the CSV, but has voted, and a voter who voted stays on the roll\n\
         differs  S4: the roll has Ada Lovelace, the CSV has Ada King (not updated: there is no operation to change a voter)\n\
         Dry run: nothing was changed. Would add 2 and remove 1; 1 kept because they voted, 1 with other details (not updated), 1 unchanged.\n"
    );
    assert_eq!(roll(&server)?, before);
    assert_eq!(server.admin().audit_log(0, None)?.len(), audit_before);
    Ok(())
}

#[test]
fn the_roll_ends_up_as_the_csv_except_voted_and_renamed_voters() -> anyhow::Result<()> {
    let server = election()?;
    let dir = tempfile::tempdir()?;
    let credentials_out = dir.path().join("new-credentials.csv");

    let (result, printed) = sync(
        &server,
        &SyncMode::Apply {
            credentials_out: credentials_out.clone(),
        },
    );
    result?;

    let creds = credentials_out.display();
    assert_eq!(
        printed,
        format!(
            "4 voters in the CSV, 4 on the server's roll (open election).\n\
             added    S5 (Grace Hopper, born 1906-12-09)\n\
             added    S6 (Donald Knuth)\n\
             removed  S2 (Edsger Dijkstra)\n\
             kept     S3 (Barbara Liskov, born 1939-11-07): not in the CSV, but has voted, and a voter who voted stays on the roll\n\
             differs  S4: the roll has Ada Lovelace, the CSV has Ada King (not updated: there is no operation to change a voter)\n\
             Summary: 2 added, 1 removed, 1 kept because they voted, 1 with other details (not updated), 1 unchanged.\n\
             The new voters' credentials are in {creds} (readable only by you): hand them out, then delete the file.\n"
        )
    );
    assert_eq!(
        summary(&roll(&server)?),
        [
            "S1 Alan Turing voted=false",
            "S3 Barbara Liskov voted=true",
            "S4 Ada Lovelace voted=false",
            "S5 Grace Hopper voted=false",
            "S6 Donald Knuth voted=false",
        ]
    );
    // The new voters can sign in with what the file says.
    for (srn, credential) in read_credentials(&credentials_out)? {
        server.client().login_voter(&srn, &credential)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials_out)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A second run finds only what it cannot change, and needs no new file.
    let again = dir.path().join("again.csv");
    let (result, printed) = sync(
        &server,
        &SyncMode::Apply {
            credentials_out: again.clone(),
        },
    );
    result?;
    assert!(
        printed.contains("Summary: 0 added, 0 removed, 1 kept because they voted, 1 with other details (not updated), 3 unchanged."),
        "{printed}"
    );
    assert!(!again.exists());
    Ok(())
}

#[test]
fn an_existing_credentials_file_stops_the_sync_before_any_change() -> anyhow::Result<()> {
    let server = election()?;
    let before = roll(&server)?;
    let dir = tempfile::tempdir()?;
    let credentials_out = dir.path().join("creds.csv");
    std::fs::write(&credentials_out, "someone else's credentials\n")?;

    let (result, _) = sync(
        &server,
        &SyncMode::Apply {
            credentials_out: credentials_out.clone(),
        },
    );

    let error = format!(
        "{:#}",
        result
            .err()
            .ok_or_else(|| anyhow::anyhow!("sync succeeded"))?
    );
    assert!(error.contains("creds.csv already exists"), "{error}");
    assert_eq!(roll(&server)?, before);
    assert_eq!(
        std::fs::read_to_string(&credentials_out)?,
        "someone else's credentials\n"
    );
    Ok(())
}

#[test]
fn after_the_close_the_roll_is_left_alone() -> anyhow::Result<()> {
    let server = election()?;
    server.store.close_election(&trusted_admin())?;
    let before = roll(&server)?;
    let dir = tempfile::tempdir()?;
    let credentials_out = dir.path().join("creds.csv");

    let (result, _) = sync(
        &server,
        &SyncMode::Apply {
            credentials_out: credentials_out.clone(),
        },
    );

    let error = result.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(error.contains("the election is closed"), "{error}");
    assert_eq!(roll(&server)?, before);
    assert!(!credentials_out.exists());
    Ok(())
}

/// `srn,first_name,last_name,credential` rows, as an election office reads them.
fn read_credentials(path: &Path) -> anyhow::Result<Vec<(String, Secret)>> {
    let mut reader = csv::Reader::from_path(path)?;
    assert_eq!(
        reader.headers()?,
        vec!["srn", "first_name", "last_name", "credential"]
    );
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record?;
        rows.push((record[0].to_string(), Secret::new(&record[3])));
    }
    let srns: Vec<&str> = rows.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(srns, ["S5", "S6"]);
    Ok(rows)
}
