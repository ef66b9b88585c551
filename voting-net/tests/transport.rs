//! The server under bad input and bad peers, over real sockets: every case gets
//! an answer or a closed connection, and the server keeps serving.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use voting_core::{ErrorCode, Store, StoreConfig};
use voting_net::{Client, ClientConfig, NetError, ServerConfig};
use voting_testkit::{TestCerts, TestDb, TestServer};

/// Sends raw lines on a fresh TLS connection and reads one reply line per line.
fn exchange(server: &TestServer, lines: &[&[u8]]) -> Vec<Value> {
    let tls = server.raw_tls();
    let mut reader = BufReader::new(tls);
    let mut replies = Vec::new();
    for line in lines {
        let stream = reader.get_mut();
        stream.write_all(line).unwrap();
        stream.write_all(b"\n").unwrap();
        let mut reply = String::new();
        reader.read_line(&mut reply).unwrap();
        replies.push(serde_json::from_str(&reply).unwrap_or(Value::Null));
    }
    replies
}

fn error_code(reply: &Value) -> &str {
    reply["error"]["code"].as_str().unwrap_or("<none>")
}

fn still_serves(server: &TestServer) {
    let mut c = server.client();
    assert_eq!(c.tally().unwrap().ballots, 0);
}

#[test]
fn malformed_lines_get_an_error_and_the_connection_goes_on() {
    let server = TestServer::start();
    let nested = "[".repeat(50_000);
    let replies = exchange(
        &server,
        &[
            b"{\"id\":1,\"op\":\"tally\"}",
            b"this is not json",
            b"\xff\xfe\x00 invalid utf-8",
            nested.as_bytes(),
            b"{\"id\":2,\"op\":\"hello\",\"version\":\"one\"}",
            b"{\"id\":3,\"op\":\"hello\",\"version\":99}",
            b"{\"id\":4,\"op\":\"hello\",\"version\":1}",
            b"{\"id\":5,\"op\":\"launch_rockets\"}",
            b"{\"id\":18446744073709551616,\"op\":\"tally\"}",
            b"{\"id\":6,\"op\":\"verify\",\"receipt\":12}",
            b"{\"id\":7,\"op\":\"tally\"}",
        ],
    );
    let codes: Vec<&str> = replies.iter().map(error_code).collect();
    assert_eq!(
        codes,
        [
            "malformed_request", // no hello yet
            "malformed_request",
            "malformed_request",
            "malformed_request",
            "malformed_request",
            "unsupported_version",
            "<none>",
            "unknown_op",
            "malformed_request",
            "malformed_request",
            "<none>",
        ]
    );
    assert_eq!(
        replies[7]["id"], 5,
        "the id is echoed when it could be read"
    );
    assert_eq!(replies[10]["ok"], true);
    still_serves(&server);
}

#[test]
fn a_line_over_the_limit_gets_line_too_long_and_the_connection_closes() {
    let server = TestServer::start();
    let mut tls = server.raw_tls();
    let huge = vec![b'x'; 70 * 1024];
    // The server may close before reading everything; a failed write is fine.
    let _ = tls.write_all(&huge);
    let _ = tls.write_all(b"\n");
    let mut rest = String::new();
    let _ = tls.read_to_string(&mut rest);
    let first: Value = serde_json::from_str(rest.lines().next().unwrap_or("")).unwrap();
    assert_eq!(error_code(&first), "line_too_long");
    still_serves(&server);
}

#[test]
fn plain_tcp_probes_and_garbage_handshakes_do_not_hurt_the_server() {
    let server = TestServer::start();
    let addr = server.handle().local_addr();
    for probe in [
        &b"GET / HTTP/1.0\r\n\r\n"[..],
        b"\x16\x03\x01\x00\x05hello",
        b"",
    ] {
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.write_all(probe).unwrap();
        tcp.shutdown(std::net::Shutdown::Write).unwrap();
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink);
    }
    // A probe that connects and says nothing holds only its own thread.
    let _silent = TcpStream::connect(addr).unwrap();
    still_serves(&server);
}

#[test]
fn the_client_refuses_servers_its_ca_does_not_vouch_for() {
    let server = TestServer::start();
    let stranger = TestCerts::new();
    let untrusted = ClientConfig::from_ca_file(stranger.ca()).unwrap();
    let err = Client::connect(&server.addr(), &untrusted).err().unwrap();
    assert_eq!(err.code(), ErrorCode::TlsFailed, "{err}");

    // The right CA, but a name the certificate does not carry.
    let by_other_name = format!("127.0.0.2:{}", server.handle().local_addr().port());
    let err = Client::connect(&by_other_name, &server.client_config())
        .err()
        .unwrap();
    assert!(
        matches!(
            err.code(),
            ErrorCode::TlsFailed | ErrorCode::ConnectionFailed
        ),
        "{err}"
    );
    still_serves(&server);
}

#[test]
fn expired_and_misnamed_certificates_are_refused() {
    for certs in [
        TestCerts::with_server(&["localhost"], &["127.0.0.1"], -30, 10),
        TestCerts::with_server(&["elsewhere.example"], &[], 0, 30),
    ] {
        let db = TestDb::new();
        let store = std::sync::Arc::new(Store::connect(&db.url(), StoreConfig::default()).unwrap());
        // Built directly: load_identity itself refuses an expired certificate.
        let identity = voting_net::ServerIdentity::from_pem_ignoring_expiry(
            &std::fs::read(certs.cert()).unwrap(),
            &std::fs::read(certs.key()).unwrap(),
            "cert",
            "key",
        )
        .unwrap();
        let handle =
            voting_net::Server::bind("127.0.0.1:0", identity, store, ServerConfig::default())
                .unwrap()
                .spawn()
                .unwrap();
        let addr = format!("localhost:{}", handle.local_addr().port());
        let config = ClientConfig::from_ca_file(certs.ca()).unwrap();
        let err = Client::connect(&addr, &config).err().unwrap();
        assert_eq!(err.code(), ErrorCode::TlsFailed, "{err}");
    }
}

#[test]
fn past_max_connections_a_client_is_told_the_server_is_busy() {
    let server = TestServer::start_with(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let first = server.client();
    let _second = server.client();
    let err = Client::connect(&server.addr(), &server.client_config())
        .err()
        .unwrap();
    assert_eq!(err.code(), ErrorCode::ServerBusy, "{err}");
    drop(first);
    // The slot frees when the connection's thread ends.
    let mut retry = None;
    for _ in 0..50 {
        match Client::connect(&server.addr(), &server.client_config()) {
            Ok(c) => {
                retry = Some(c);
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    assert!(retry.is_some(), "no slot freed after a client left");
}

#[test]
fn an_idle_anonymous_connection_is_closed_with_a_reason() {
    let server = TestServer::start_with(ServerConfig {
        idle_timeout_anonymous: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    let mut c = server.client();
    std::thread::sleep(Duration::from_millis(2500));
    let err = c.tally().unwrap_err();
    match &err {
        NetError::Remote { code, .. } => assert_eq!(*code, ErrorCode::IdleTimeout),
        other => panic!("expected idle_timeout, got {other:?}"),
    }
}

#[test]
fn a_server_will_not_start_with_a_wrong_key_or_an_expired_certificate() {
    let certs = TestCerts::new();
    let other = TestCerts::new();
    let err = voting_net::load_identity(&certs.cert(), &other.key())
        .err()
        .unwrap();
    assert!(err.to_string().contains("is not the private key"), "{err}");
    let expired = TestCerts::with_server(&["localhost"], &[], -30, 10);
    let err = voting_net::load_identity(&expired.cert(), &expired.key())
        .err()
        .unwrap();
    assert!(err.to_string().contains("expired"), "{err}");
    let err = voting_net::load_identity(&certs.key(), &certs.key())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("no certificate in the file"),
        "{err}"
    );
    assert!(voting_net::load_identity(&certs.cert(), &certs.key()).is_ok());
}
