//! The `voting` binary as people and scripts use it: a real `voting serve`
//! process, real TLS, a real database, commands run as child processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use voting_testkit::{TestCerts, TestDb, ADMIN_NAME, ADMIN_PASSWORD};

const VOTING: &str = env!("CARGO_BIN_EXE_voting");

/// A database set up with `voting db …` and a `voting serve` process on it.
struct Election {
    server: Child,
    addr: String,
    certs: TestCerts,
    db: TestDb,
}

impl Election {
    fn start() -> Election {
        let db = TestDb::new();
        let certs = TestCerts::new();
        let init = Command::new(VOTING)
            .args(["db", "init", "--database-url", &db.url()])
            .output()
            .unwrap();
        assert!(init.status.success(), "{}", text(&init.stderr));
        let add_admin = Command::new(VOTING)
            .args(["db", "add-admin", ADMIN_NAME, "--database-url", &db.url()])
            .env("VOTING_PASSWORD", ADMIN_PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(add_admin.status.success(), "{}", text(&add_admin.stderr));
        let mut server = Command::new(VOTING)
            .arg("serve")
            .args(["--database-url", &db.url(), "--bind", "127.0.0.1:0"])
            .arg("--cert")
            .arg(certs.cert())
            .arg("--key")
            .arg(certs.key())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The server logs the address it bound; port 0 means we must read it.
        let mut log = BufReader::new(server.stderr.take().unwrap());
        let mut port = None;
        let mut line = String::new();
        while port.is_none() && log.read_line(&mut line).unwrap() > 0 {
            if let Some(rest) = line.split("serving on 127.0.0.1:").nth(1) {
                port = rest.split(' ').next().map(str::to_string);
            }
            line.clear();
        }
        std::thread::spawn(move || for _ in log.lines() {});
        let addr = format!("localhost:{}", port.expect("the server did not start"));
        Election {
            server,
            addr,
            certs,
            db,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(VOTING);
        c.env("VOTING_SERVER", &self.addr)
            .env("VOTING_CA", self.certs.ca())
            .env_remove("VOTING_PASSWORD")
            .env_remove("VOTING_CREDENTIAL")
            .stdin(Stdio::null());
        c
    }

    fn admin(&self, args: &[&str]) -> Output {
        self.command()
            .args(["admin", "--user", ADMIN_NAME])
            .args(args)
            .env("VOTING_PASSWORD", ADMIN_PASSWORD)
            .output()
            .unwrap()
    }

    fn voter(&self, credential: &str, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .env("VOTING_CREDENTIAL", credential)
            .output()
            .unwrap()
    }
}

impl Drop for Election {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = &self.db;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts success and parses stdout as one JSON document.
fn ok_json(out: Output) -> Value {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out.stdout)))
}

/// Asserts failure with `code` as the one-line error on stderr.
fn fails_with(out: Output, code: &str) {
    assert!(
        !out.status.success(),
        "unexpected success: {}",
        text(&out.stdout)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!("voting: {code}: ")),
        "expected {code}, got: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line expected: {stderr}"
    );
}

#[test]
fn an_election_from_roll_to_result_through_the_binary() {
    let e = Election::start();
    ok_json(e.admin(&["candidate", "add", "c1", "--name", "Ada Lovelace", "--json"]));
    ok_json(e.admin(&[
        "--json",
        "candidate",
        "add",
        "C2",
        "--name",
        "Grace Hopper",
        "--affiliation",
        "Navy",
    ]));
    let added = ok_json(e.admin(&[
        "voter",
        "add",
        "S1",
        "--first-name",
        "Alan",
        "--last-name",
        "Turing",
        "--json",
    ]));
    let alan = added["credential"].as_str().unwrap().to_string();

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("roll.csv");
    std::fs::write(&csv, "srn,first_name,last_name,dob\nS2,Edsger,Dijkstra,1930-05-11\nS3,\"O'Neil, Jr\",Müller,\nS4,Barbara,Liskov,\n").unwrap();
    let creds_file = dir.path().join("creds.csv");
    let imported = ok_json(e.admin(&[
        "voter",
        "import",
        csv.to_str().unwrap(),
        "--credentials-out",
        creds_file.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(imported["imported"], 3);
    assert_private(&creds_file);
    let mut creds = csv::Reader::from_path(&creds_file).unwrap();
    let rows: Vec<csv::StringRecord> = creds.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[1][1], "O'Neil, Jr");
    let edsger = rows[0][3].to_string();

    let listed = ok_json(e.admin(&["voter", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 4);

    let check = ok_json(e.voter(&alan, &["check", "--srn", "S1", "--json"]));
    assert_eq!(check["eligibility"], "election_not_open");
    fails_with(
        e.voter(
            &alan,
            &["vote", "--srn", "S1", "--candidate", "C1", "--yes"],
        ),
        "election_not_open",
    );

    let status = ok_json(e.admin(&["election", "open", "--json"]));
    assert_eq!(status["state"], "open");
    fails_with(e.admin(&["candidate", "remove", "C2"]), "wrong_state");

    let check = e.voter(&alan, &["check", "--srn", "s1"]);
    assert_eq!(text(&check.stdout).trim(), "S1: you may vote now.");
    let cast = ok_json(e.voter(
        &alan,
        &[
            "vote",
            "--srn",
            "S1",
            "--candidate",
            "C1",
            "--yes",
            "--json",
        ],
    ));
    let receipt = cast["receipt"].as_str().unwrap().to_string();
    assert_eq!(cast["candidate"], "C1");
    fails_with(
        e.voter(
            &alan,
            &["vote", "--srn", "S1", "--candidate", "C2", "--yes"],
        ),
        "already_voted",
    );
    fails_with(
        e.voter(
            &edsger,
            &["vote", "--srn", "S2", "--candidate", "C7", "--yes"],
        ),
        "unknown_candidate",
    );
    fails_with(
        e.voter(&edsger, &["vote", "--srn", "S2", "--candidate", "C2"]),
        "invalid_input",
    );
    let human = succeeds(e.voter(
        &edsger,
        &["vote", "--srn", "S2", "--candidate", "C2", "--yes"],
    ));
    assert!(human.contains("Your vote for C2 is counted."), "{human}");

    // Global options after the subcommand, and no credential needed to verify.
    let verified = e
        .command()
        .env_remove("VOTING_SERVER")
        .args(["verify", &receipt, "--server", &e.addr, "--json"])
        .output()
        .unwrap();
    assert_eq!(ok_json(verified)["candidate"], "C1");

    let results = ok_json(e.command().args(["results", "--json"]).output().unwrap());
    let counts: Vec<(String, u64)> = results["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["srn"].as_str().unwrap().to_string(),
                c["votes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("C1".into(), 1), ("C2".into(), 1)]);
    assert_eq!(
        (results["ballots"].as_u64(), results["voters"].as_u64()),
        (Some(2), Some(4))
    );

    fails_with(e.admin(&["voter", "remove", "S1"]), "already_voted");
    ok_json(e.admin(&["voter", "remove", "S4", "--json"]));
    ok_json(e.admin(&["election", "close", "--json"]));
    fails_with(
        e.voter(
            &edsger,
            &["vote", "--srn", "S3", "--candidate", "C2", "--yes"],
        ),
        "bad_credentials",
    );
    let audit = ok_json(e.admin(&["audit", "--json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    for expected in [
        "voter.import",
        "election.open",
        "voter.remove",
        "election.close",
    ] {
        assert!(actions.contains(&expected), "{expected} not in {actions:?}");
    }
}

fn assert_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "credentials file mode {mode:o}");
    }
}

#[test]
fn mistakes_get_one_clear_line_and_change_nothing() {
    let e = Election::start();
    let wrong = e
        .command()
        .args(["admin", "--user", ADMIN_NAME, "election", "status"])
        .env("VOTING_PASSWORD", "not the password")
        .output()
        .unwrap();
    fails_with(wrong, "bad_credentials");
    fails_with(
        e.command()
            .env_remove("VOTING_CA")
            .args(["results"])
            .output()
            .unwrap(),
        "invalid_input",
    );
    fails_with(
        e.command().args(["check", "--srn", "S1"]).output().unwrap(),
        "invalid_input",
    );

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("roll.csv");
    std::fs::write(
        &csv,
        "srn,first_name,last_name,dob\nS1,Ok,Row,\nS 2,Bad,Srn,\n",
    )
    .unwrap();
    let out = dir.path().join("creds.csv");
    let failed = e.admin(&[
        "voter",
        "import",
        csv.to_str().unwrap(),
        "--credentials-out",
        out.to_str().unwrap(),
    ]);
    assert!(
        text(&failed.stderr).contains("line 3"),
        "{}",
        text(&failed.stderr)
    );
    fails_with(failed, "invalid_input");
    assert!(!out.exists(), "a credentials file was left behind");
    let status = ok_json(e.admin(&["election", "status", "--json"]));
    assert_eq!(status["voters"], 0);

    std::fs::write(&out, "precious").unwrap();
    std::fs::write(&csv, "srn,first_name,last_name,dob\nS1,Ok,Row,\n").unwrap();
    fails_with(
        e.admin(&[
            "voter",
            "import",
            csv.to_str().unwrap(),
            "--credentials-out",
            out.to_str().unwrap(),
        ]),
        "invalid_input",
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");

    let unreachable = e
        .command()
        .args(["results", "--server", "localhost:1"])
        .output()
        .unwrap();
    fails_with(unreachable, "connection_failed");
}

#[test]
fn results_watch_prints_one_json_line_per_change() {
    let e = Election::start();
    succeeds(e.admin(&["candidate", "add", "C1", "--name", "Ada"]));
    let alan = ok_json(e.admin(&[
        "voter",
        "add",
        "S1",
        "--first-name",
        "Alan",
        "--last-name",
        "Turing",
        "--json",
    ]));
    ok_json(e.admin(&["election", "open", "--json"]));

    let mut watch = e
        .command()
        .args(["results", "--watch", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["ballots"], 0);
    ok_json(e.voter(
        alan["credential"].as_str().unwrap(),
        &[
            "vote",
            "--srn",
            "S1",
            "--candidate",
            "C1",
            "--yes",
            "--json",
        ],
    ));
    let started = Instant::now();
    let mut seen = None;
    for line in lines.by_ref() {
        let tally: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if tally["ballots"] == 1 {
            seen = Some(tally);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(seen.unwrap()["candidates"][0]["votes"], 1);
}

/// Asserts success of a command run for people; returns what it printed.
fn succeeds(out: Output) -> String {
    assert!(out.status.success(), "failed: {}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn serve_check_config_reports_what_it_would_do_and_catches_a_wrong_key() {
    let e = Election::start();
    let check = |key: &Path| {
        Command::new(VOTING)
            .args(["serve", "--check-config"])
            .env("VOTING_DATABASE_URL", e.db.url())
            .env("VOTING_BIND", "127.0.0.1:0")
            .env("VOTING_CERT", e.certs.cert())
            .env("VOTING_KEY", key)
            .env("VOTING_RESULTS", "after-close")
            .output()
            .unwrap()
    };
    let said = succeeds(check(&e.certs.key()));
    assert!(said.contains("would"), "{said}");
    assert!(said.contains("show results after-close"), "{said}");
    assert!(said.contains("in setup (0 candidates, 0 voters"), "{said}");
    assert!(
        !said.contains(&e.db.url()),
        "the database password was printed: {said}"
    );
    let stranger = TestCerts::new();
    fails_with(check(&stranger.key()), "invalid_input");
}

/// Admins publish a closed election; anyone recounts it without a server; a
/// ballot edited in the database is caught by `verify` and by the recount, and
/// an edited publication file by the recount.
#[test]
fn a_published_election_recounts_and_tampering_is_caught() {
    use mysql::prelude::Queryable;

    let e = Election::start();
    for (srn, name) in [("C1", "Ada"), ("C2", "Grace")] {
        succeeds(e.admin(&["candidate", "add", srn, "--name", name]));
    }
    let mut credentials = Vec::new();
    for i in 1..=4 {
        let added = ok_json(e.admin(&[
            "voter",
            "add",
            &format!("S{i}"),
            "--first-name",
            "F",
            "--last-name",
            "L",
            "--json",
        ]));
        credentials.push(added["credential"].as_str().unwrap().to_string());
    }
    succeeds(e.admin(&["election", "open"]));
    fails_with(
        e.admin(&["export", "/nonexistent-never-written"]),
        "wrong_state",
    );

    // The voter sees their receipt and their ballot's seal.
    let mut receipts = Vec::new();
    for (i, credential) in credentials.iter().enumerate() {
        let choice = if i == 0 { "C2" } else { "C1" };
        let out = succeeds(e.voter(
            credential,
            &[
                "vote",
                "--srn",
                &format!("S{}", i + 1),
                "--candidate",
                choice,
                "--yes",
            ],
        ));
        let lines: Vec<&str> = out.lines().map(str::trim).collect();
        let receipt = lines[lines
            .iter()
            .position(|l| l.starts_with("Your receipt"))
            .unwrap()
            + 1];
        let seal = lines[lines
            .iter()
            .position(|l| l.contains("ballot's seal"))
            .unwrap()
            + 1];
        assert!(
            seal.starts_with('#') && seal.len() == "#1:".len() + 16,
            "{seal}"
        );
        receipts.push((receipt.to_string(), seal.to_string()));
    }
    let verified = succeeds(
        e.command()
            .args(["verify", &receipts[0].0, "--seal", &receipts[0].1])
            .output()
            .unwrap(),
    );
    assert!(verified.contains("is counted, for C2"), "{verified}");
    assert!(
        verified.contains("The ballot chain is intact: 4 ballots"),
        "{verified}"
    );

    succeeds(e.admin(&["election", "close"]));
    let published = ok_json(e.admin(&["results", "--json"]));
    assert_eq!(published["ballots"].as_array().unwrap().len(), 4);
    assert_eq!(published["ballot_chain"]["length"], 4);
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("published");
    let said = succeeds(e.admin(&["export", export.to_str().unwrap()]));
    assert!(said.contains("Published 4 ballots"), "{said}");
    let ballots_csv = std::fs::read_to_string(export.join("ballots.csv")).unwrap();
    assert_eq!(
        ballots_csv.lines().next(),
        Some("seq,candidate,receipt_hash,chain_hash")
    );
    assert_eq!(ballots_csv.lines().count(), 5);
    // Exports never overwrite.
    fails_with(
        e.admin(&["export", export.to_str().unwrap()]),
        "invalid_input",
    );

    let recount = |path: &Path| {
        Command::new(VOTING)
            .arg("recount")
            .arg(path)
            .output()
            .unwrap()
    };
    let clean = succeeds(recount(&export));
    assert!(clean.contains("Recounted 4 ballots"), "{clean}");
    assert!(clean.contains("The publication is consistent"), "{clean}");

    // A published count edited by hand: the recount disagrees, and says where.
    let json_path = export.join("publication.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    doc["tally"]["candidates"][0]["votes"] = Value::from(1);
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, doc.to_string()).unwrap();
    let out = recount(&forged);
    assert!(text(&out.stdout).contains("C1 (Ada): the tally states 1 votes, the ballots hold 3"));
    fails_with(out, "integrity_violation");

    // A ballot moved to the other candidate directly in the database.
    e.db.conn()
        .query_drop("UPDATE ballots SET candidate_srn = 'C1' WHERE candidate_srn = 'C2'")
        .unwrap();
    for (receipt, seal) in &receipts {
        let out = e
            .command()
            .args(["verify", receipt, "--seal", seal])
            .output()
            .unwrap();
        assert!(text(&out.stdout).contains("WARNING: the ballot chain is broken"));
        fails_with(out, "integrity_violation");
    }
    let export2 = dir.path().join("after-tampering");
    succeeds(e.admin(&["export", export2.to_str().unwrap()]));
    let out = recount(&export2);
    assert!(
        text(&out.stdout).contains("Ballot chain: BROKEN"),
        "{}",
        text(&out.stdout)
    );
    fails_with(out, "integrity_violation");
}

/// The demo publication in docs/ stays readable by the current `voting recount`.
#[test]
fn the_documented_demo_publication_recounts_clean() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/demo-publication");
    let out = succeeds(
        Command::new(VOTING)
            .arg("recount")
            .arg(&dir)
            .output()
            .unwrap(),
    );
    assert!(out.contains("Recounted 5 ballots"), "{out}");
    assert!(out.contains("Audit chain: intact, 10 links"), "{out}");
}
