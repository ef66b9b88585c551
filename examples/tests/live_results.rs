//! The live results watcher against a real server: it prints a new tally when
//! another client votes, and stops when the election closes.

use std::io::Write;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use voting_core::{ErrorCode, ResultsPolicy, Secret};
use voting_examples::connect::Endpoint;
use voting_examples::live_results::{connect_viewer, watch_results, WatchEnd};
use voting_net::{NetError, ServerConfig};
use voting_testkit::{trusted_admin, TestServer, ADMIN_NAME, ADMIN_PASSWORD};

/// What the watcher has printed so far, readable while it runs.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Screen {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Waits until the screen shows `what`.
    fn wait_for(&self, what: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text().contains(what) {
            if Instant::now() > deadline {
                bail!(
                    "the watcher never printed {what:?}; it printed:\n{}",
                    self.text()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn endpoint(server: &TestServer) -> Endpoint {
    Endpoint {
        server: server.addr(),
        config: server.client_config(),
    }
}

/// Runs the watcher as the example does, in its own thread. An admin name is
/// always offered: it must be used only when the results are not public.
fn start_watcher(server: &TestServer, updates: Option<u64>) -> Watcher {
    let (screen, (sender, done)) = (Screen::default(), mpsc::channel());
    let (endpoint, mut out) = (endpoint(server), screen.clone());
    let password_asked = Arc::new(Mutex::new(false));
    let watcher = Watcher {
        screen,
        done,
        password_asked: Arc::clone(&password_asked),
    };
    thread::spawn(move || {
        let result = (|| {
            let password = |_: &str| {
                *password_asked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = true;
                Ok(Secret::new(ADMIN_PASSWORD))
            };
            let mut client = connect_viewer(&endpoint, Some(ADMIN_NAME), password)?;
            watch_results(&mut client, updates, &mut out)
        })();
        let _ = sender.send(result);
    });
    watcher
}

/// A watcher running in its own thread.
struct Watcher {
    screen: Screen,
    done: mpsc::Receiver<anyhow::Result<WatchEnd>>,
    password_asked: Arc<Mutex<bool>>,
}

impl Watcher {
    /// How the watcher stopped (it must stop within 20 s).
    fn finished(&self) -> anyhow::Result<WatchEnd> {
        self.done
            .recv_timeout(Duration::from_secs(20))
            .map_err(|_| anyhow!("the watcher did not stop"))?
    }

    fn password_asked(&self) -> bool {
        *self
            .password_asked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[test]
fn a_vote_cast_by_another_client_shows_up_as_an_update() -> anyhow::Result<()> {
    let server = TestServer::start();
    let voters = server.seed(2, 3);
    server.open();
    let watcher = start_watcher(&server, Some(1));
    watcher.screen.wait_for("turnout")?;

    let mut voter = server.client();
    voter.login_voter(&voters[0].0, &voters[0].1)?;
    voter.cast(&"C2".parse()?)?;

    assert_eq!(watcher.finished()?, WatchEnd::UpdatesSeen);
    assert!(!watcher.password_asked(), "live results need no sign-in");
    assert_eq!(
        watcher.screen.text(),
        "Results, now (election open):\n\
         \x20 C1  Candidate 1       0 votes    0.0%\n\
         \x20 C2  Candidate 2       0 votes    0.0%\n\
         \x20 turnout: 0 of 3 voters (0.0%); ballots in the box: 0\n\
         Results, update 1 (election open):\n\
         \x20 C1  Candidate 1       0 votes    0.0%\n\
         \x20 C2  Candidate 2       1 vote   100.0%\n\
         \x20 turnout: 1 of 3 voters (33.3%); ballots in the box: 1\n"
    );
    Ok(())
}

#[test]
fn with_results_after_close_an_admin_watches_until_the_close() -> anyhow::Result<()> {
    let server = TestServer::start_with(ServerConfig {
        results: ResultsPolicy::AfterClose,
        ..ServerConfig::default()
    });
    let voters = server.seed(1, 2);
    server.open();

    // Without an admin, the watcher explains what to do instead.
    let mut anonymous = connect_viewer(&endpoint(&server), None, |_| bail!("not asked"))?;
    let refused = watch_results(&mut anonymous, None, &mut Vec::new())
        .err()
        .ok_or_else(|| anyhow!("an anonymous watcher saw the count before the close"))?;
    assert!(
        refused.to_string().contains("sign in as an admin"),
        "{refused:#}"
    );
    let code = refused
        .chain()
        .find_map(|c| c.downcast_ref::<NetError>().map(NetError::code));
    assert_eq!(code, Some(ErrorCode::Forbidden));

    let watcher = start_watcher(&server, None);
    watcher.screen.wait_for("turnout")?;
    let mut voter = server.client();
    voter.login_voter(&voters[1].0, &voters[1].1)?;
    voter.cast(&"C1".parse()?)?;
    watcher.screen.wait_for("ballots in the box: 1")?;
    server.store.close_election(&trusted_admin())?;

    assert_eq!(watcher.finished()?, WatchEnd::ElectionClosed);
    assert!(watcher.password_asked());
    let printed = watcher.screen.text();
    assert!(
        printed.ends_with(
            "(election closed):\n\
             \x20 C1  Candidate 1       1 vote   100.0%\n\
             \x20 turnout: 1 of 2 voters (50.0%); ballots in the box: 1\n\
             The election is closed: these are the final results.\n"
        ),
        "{printed}"
    );
    Ok(())
}
