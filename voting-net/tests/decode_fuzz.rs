//! Property tests of the request decoder, the first code that touches what a
//! peer sends: whatever the line, `decode_request` returns a request or a typed
//! error, and never panics.
//!
//! The default, 2,048 cases per property (or `PROPTEST_CASES` when set), keeps
//! CI to a few seconds. A long campaign, over a million inputs per property:
//!
//! ```sh
//! PROPTEST_CASES=1000000 cargo test --release -p voting-net --test decode_fuzz
//! ```

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use voting_core::ErrorCode;
use voting_net::protocol::{decode_request, RejectedRequest};
use voting_net::{Op, Request};

/// The only codes the decoder may give: anything else would be a new, undocumented
/// failure mode on the wire.
const DECODE_CODES: [ErrorCode; 3] = [
    ErrorCode::MalformedRequest,
    ErrorCode::UnknownOp,
    ErrorCode::InvalidInput,
];

/// Decodes `line` and checks what any outcome must satisfy; returns the outcome.
fn decode_checked(line: &[u8]) -> Result<(u64, Request), RejectedRequest> {
    let outcome = decode_request(line);
    match &outcome {
        Ok((id, request)) => {
            // What was accepted encodes again and means the same thing.
            let again = request.to_line(*id);
            let (id2, request2) = decode_request(&again)
                .unwrap_or_else(|e| panic!("re-encoded request rejected: {:?}", e.error));
            assert_eq!((id2, request2.op()), (*id, request.op()));
            // The op decoded is the one named in the line.
            let value: Value = serde_json::from_slice(line).expect("an accepted line is JSON");
            assert_eq!(value["op"].as_str(), Some(request.op().name()));
            assert_eq!(value["id"].as_u64(), Some(*id));
        }
        Err(rejected) => {
            assert!(
                DECODE_CODES.contains(&rejected.error.code),
                "unexpected code {:?}: {}",
                rejected.error.code,
                rejected.error.message
            );
            assert!(!rejected.error.message.is_empty());
            // A message is a sentence, not an echo of a huge input.
            assert!(
                rejected.error.message.len() <= 1024,
                "message of {} bytes",
                rejected.error.message.len()
            );
        }
    }
    outcome
}

/// Field names the requests use, so that generated objects hit real fields.
const FIELDS: [&str; 16] = [
    "id",
    "op",
    "version",
    "name",
    "password",
    "srn",
    "credential",
    "receipt",
    "candidate",
    "first_name",
    "last_name",
    "dob",
    "affiliation",
    "voters",
    "after",
    "limit",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&FIELDS[..]).prop_map(str::to_string),
        1 => ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(u32::MAX as u64 + 1)),
        Just(Value::from(-1)),
        Just(Value::from(0)),
    ]
}

fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(Op::ALL.iter().map(|op| op.name()).collect::<Vec<_>>())
            .prop_map(str::to_string),
        "[A-Z][A-Z0-9]{0,8}",
        ".{0,40}",
        "[A-Z2-7-]{0,40}",
        Just(String::new()),
        Just("1970-01-01".to_string()),
        Just("2999-02-30".to_string()),
    ]
}

/// Any JSON value, nested a few levels, biased towards the protocol's vocabulary.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A well-formed request of every op, as JSON, in the shape clients send.
fn valid_requests() -> Vec<Value> {
    let voter = serde_json::json!({
        "srn": "X1", "first_name": "Ada", "last_name": "Lovelace", "dob": "1955-06-07"
    });
    let mut out = Vec::new();
    for op in Op::ALL {
        let mut v = serde_json::json!({ "id": 7, "op": op.name() });
        let fields: Value = match op {
            Op::Hello => serde_json::json!({ "version": 1 }),
            Op::LoginAdmin => serde_json::json!({ "name": "officer", "password": "pw" }),
            Op::LoginVoter => serde_json::json!({ "srn": "S1", "credential": "ABCDE-FGHIJ" }),
            Op::Verify => serde_json::json!({ "receipt": "AAAA-BBBB" }),
            Op::Cast => serde_json::json!({ "candidate": "C1" }),
            Op::VoterAdd => voter.clone(),
            Op::VoterRemove | Op::VoterResetCredential | Op::CandidateRemove => {
                serde_json::json!({ "srn": "S1" })
            }
            Op::ImportRows => serde_json::json!({ "voters": [voter.clone(), voter.clone()] }),
            Op::CandidateAdd => {
                serde_json::json!({ "srn": "C9", "name": "Grace", "affiliation": "Navy" })
            }
            Op::Audit => serde_json::json!({ "after": 3, "limit": 10 }),
            _ => serde_json::json!({}),
        };
        if let (Value::Object(map), Value::Object(extra)) = (&mut v, fields) {
            map.extend(extra);
        }
        out.push(v);
    }
    out
}

/// One change to a request object.
#[derive(Debug, Clone)]
enum Mutation {
    Remove(usize),
    Replace(usize, Value),
    Insert(String, Value),
    RenameOp(String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Remove),
        (any::<usize>(), json_value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        (key(), json_value()).prop_map(|(k, v)| Mutation::Insert(k, v)),
        string().prop_map(Mutation::RenameOp),
    ]
}

fn apply(map: &mut Map<String, Value>, m: Mutation) {
    let nth_key = |map: &Map<String, Value>, i: usize| map.keys().nth(i % map.len()).cloned();
    match m {
        Mutation::Remove(i) if !map.is_empty() => {
            if let Some(k) = nth_key(map, i) {
                map.remove(&k);
            }
        }
        Mutation::Replace(i, v) if !map.is_empty() => {
            if let Some(k) = nth_key(map, i) {
                map.insert(k, v);
            }
        }
        Mutation::Insert(k, v) => {
            map.insert(k, v);
        }
        Mutation::RenameOp(op) => {
            map.insert("op".into(), Value::String(op));
        }
        _ => {}
    }
}

/// One change to the encoded line.
#[derive(Debug, Clone)]
enum ByteMutation {
    Truncate(usize),
    Flip(usize, u8),
    Insert(usize, u8),
}

fn byte_mutation() -> impl Strategy<Value = ByteMutation> {
    prop_oneof![
        any::<usize>().prop_map(ByteMutation::Truncate),
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| ByteMutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| ByteMutation::Insert(i, b)),
    ]
}

fn apply_bytes(line: &mut Vec<u8>, m: &ByteMutation) {
    if line.is_empty() {
        return;
    }
    match *m {
        ByteMutation::Truncate(i) => line.truncate(i % line.len()),
        ByteMutation::Flip(i, b) => {
            let i = i % line.len();
            line[i] ^= b;
        }
        ByteMutation::Insert(i, b) => {
            let i = i % (line.len() + 1);
            line.insert(i, b);
        }
    }
}

/// 2,048 cases per property unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2048;
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_are_rejected_or_decoded_never_a_panic(
        line in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        decode_checked(&line).ok();
    }

    #[test]
    fn arbitrary_json_is_rejected_or_decoded_never_a_panic(value in json_value()) {
        let line = serde_json::to_vec(&value).expect("encodes");
        if decode_checked(&line).is_ok() {
            // Only an object with a readable id and a known op can be a request.
            let op = value["op"].as_str().and_then(Op::from_name);
            prop_assert!(op.is_some() && value["id"].as_u64().is_some());
        }
    }

    #[test]
    fn near_valid_requests_are_rejected_or_decoded_never_a_panic(
        which in any::<usize>(),
        mutations in proptest::collection::vec(mutation(), 1..4),
        bytes in proptest::collection::vec(byte_mutation(), 0..3),
    ) {
        let requests = valid_requests();
        let mut value = requests[which % requests.len()].clone();
        if let Value::Object(map) = &mut value {
            for m in mutations {
                apply(map, m);
            }
        }
        let mut line = serde_json::to_vec(&value).expect("encodes");
        for m in &bytes {
            apply_bytes(&mut line, m);
        }
        decode_checked(&line).ok();
    }
}

/// The generator above starts from requests that really are valid: otherwise
/// the "near-valid" property would only ever see rejections.
#[test]
fn every_unmutated_sample_request_decodes() {
    let requests = valid_requests();
    assert_eq!(requests.len(), Op::ALL.len());
    for value in requests {
        let line = serde_json::to_vec(&value).expect("encodes");
        let (id, request) = decode_checked(&line)
            .unwrap_or_else(|e| panic!("{value} rejected: {}", e.error.message));
        assert_eq!(
            (id, request.op().name()),
            (7, value["op"].as_str().unwrap())
        );
    }
}

/// An error quotes the offending value, but never all of a huge one.
#[test]
fn a_huge_wrong_value_gets_a_short_message() {
    let huge = "A".repeat(60_000);
    for line in [
        serde_json::json!({ "id": 1, "op": "hello", "version": huge }),
        serde_json::json!({ "id": 1, "op": "voter_add", "srn": "X1", "first_name": "A",
                            "last_name": "B", "dob": huge }),
    ] {
        let rejected = decode_checked(&serde_json::to_vec(&line).unwrap())
            .err()
            .unwrap();
        assert!(rejected.error.message.len() < 1024);
    }
}
