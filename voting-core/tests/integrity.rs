//! The ballot and audit chains against a real MariaDB: receipts carry their place
//! in the chain, the publication recounts clean, and editing the database behind
//! the system's back is detected by every receipt check and by the recount.

use std::sync::Arc;

use mysql::prelude::Queryable;
use voting_core::integrity::recount;
use voting_core::{
    AdminName, AdminSession, Candidate, CastReceipt, ErrorCode, NewVoter, Srn, Store, StoreConfig,
};
use voting_testkit::TestDb;

fn admin() -> AdminSession {
    AdminSession::trusted(AdminName::parse("officer").unwrap())
}

/// A store with candidates A and B and `n` voters who have all voted (A, B, A, …),
/// cast from 8 threads at once; returns the receipts.
fn election(n: usize) -> (TestDb, Arc<Store>, Vec<CastReceipt>) {
    let db = TestDb::new();
    let store = Arc::new(Store::connect(&db.url(), StoreConfig::default()).unwrap());
    store.init_schema().unwrap();
    let a = admin();
    for c in ["A", "B"] {
        store
            .add_candidate(
                &a,
                &Candidate::parse(c, &format!("Candidate {c}"), None).unwrap(),
            )
            .unwrap();
    }
    let creds: Vec<_> = (0..n)
        .map(|i| {
            let v = NewVoter::parse(&format!("S{i}"), "First", "Last", None).unwrap();
            (format!("S{i}"), store.add_voter(&a, &v).unwrap())
        })
        .collect();
    store.open_election(&a).unwrap();
    let chunks: Vec<Vec<(usize, String, _)>> = (0..8)
        .map(|t| {
            creds
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 8 == t)
                .map(|(i, (s, c))| (i, s.clone(), c.clone()))
                .collect()
        })
        .collect();
    let receipts = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let store = Arc::clone(&store);
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(i, srn, cred)| {
                            let voter = store.authenticate_voter(&srn, &cred).unwrap();
                            let choice = if i % 2 == 0 { "A" } else { "B" };
                            store
                                .cast_vote(&voter, &Srn::parse(choice).unwrap())
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (db, store, receipts)
}

#[test]
fn concurrent_ballots_get_distinct_consecutive_seals_that_verify() {
    let (_db, store, receipts) = election(40);
    let mut seqs: Vec<u64> = receipts
        .iter()
        .map(|r| r.seal.as_ref().expect("sealed at cast").seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    for r in &receipts {
        let check = store.verify_receipt(r.receipt.expose()).unwrap();
        assert_eq!(check.candidate, r.candidate);
        let seal = check.seal.unwrap();
        assert!(seal.matches(&r.seal.as_ref().unwrap().short()));
        let chain = check.chain.unwrap();
        assert!(chain.intact, "{:?}", chain.problem);
        assert_eq!(chain.length, 40);
    }
    assert!(store.check_ballot_chain().unwrap().intact);
    let audit = store.check_audit_chain(&admin()).unwrap();
    // 2 candidates + 40 voters + open.
    assert_eq!(
        (audit.length, audit.intact),
        (43, true),
        "{:?}",
        audit.problem
    );
}

#[test]
fn the_ballot_list_is_published_only_after_close_and_recounts_clean() {
    let (_db, store, receipts) = election(12);
    assert_eq!(
        store.publication(&admin()).unwrap_err().code(),
        ErrorCode::WrongState
    );
    store.close_election(&admin()).unwrap();
    let p = store.publication(&admin()).unwrap();
    assert_eq!(p.ballots.len(), 12);
    assert_eq!(p.ballot_chain.length, 12);
    assert_eq!(p.tally.votes_for(&Srn::parse("A").unwrap()), Some(6));
    // Every voter finds their ballot in the published list by the receipt's hash.
    for r in &receipts {
        let hash = hex_of(&voting_core::credentials::receipt_hash(r.receipt.expose()));
        let b = p.ballots.iter().find(|b| b.receipt_hash == hash).unwrap();
        assert_eq!(b.candidate, r.candidate);
        assert_eq!(Some(b.seq), r.seal.as_ref().map(|s| s.seq));
    }
    let report = recount(&p);
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.counts.get("B"), Some(&6));
    // What is published is what a recount reads back.
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(recount(&serde_json::from_str(&json).unwrap()), report);
}

#[test]
fn a_ballot_edited_in_the_database_is_caught_by_every_receipt_check_and_the_recount() {
    let (db, store, receipts) = election(10);
    // Someone with database access moves ballot #4 to the other candidate.
    let mut conn = db.conn();
    conn.query_drop(
        "UPDATE ballots SET candidate_srn = IF(candidate_srn = 'A', 'B', 'A') WHERE seq = 4",
    )
    .unwrap();
    for r in &receipts {
        let chain = store
            .verify_receipt(r.receipt.expose())
            .unwrap()
            .chain
            .unwrap();
        assert!(!chain.intact);
        assert_eq!(
            chain.problem.as_deref(),
            Some("ballot #4 does not match its chain hash: it was altered after it was recorded")
        );
    }
    store.close_election(&admin()).unwrap();
    let report = recount(&store.publication(&admin()).unwrap());
    assert!(!report.is_clean());
    assert!(
        report.problems[0].contains("ballot #4 does not match"),
        "{:?}",
        report.problems
    );

    // Removing an audit line (say, the one recording a voter's addition) is caught too.
    conn.query_drop("DELETE FROM audit_log WHERE action = 'voter.add' AND detail = 'S3'")
        .unwrap();
    let audit = store.check_audit_chain(&admin()).unwrap();
    assert!(!audit.intact);
    assert!(audit.problem.unwrap().contains("is missing"));
}

#[test]
fn a_ballot_removed_from_the_database_is_reported_missing() {
    let (db, store, receipts) = election(6);
    db.conn()
        .query_drop("DELETE FROM ballots WHERE seq = 2")
        .unwrap();
    let survivor = receipts
        .iter()
        .find(|r| r.seal.as_ref().unwrap().seq != 2)
        .unwrap();
    let chain = store
        .verify_receipt(survivor.receipt.expose())
        .unwrap()
        .chain
        .unwrap();
    assert_eq!(
        chain.problem.as_deref(),
        Some("ballot #2 is missing (the next one is #3)")
    );
}

fn hex_of(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
