//! The glue of `voting-admin`: each callback of [`AdminWindow`] becomes one
//! request on the worker thread, and each answer fills the window's models.
//! Every rule is the server's; this file only shows what it says.

use std::path::PathBuf;
use std::rc::Rc;

use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel};
use voting_core::{
    AuditEntry, Candidate, ElectionStatus, NewVoter, Secret, Srn, Tally, Voter, AUDIT_PAGE_MAX,
};
use voting_net::{ImportStage, NetError};

use crate::config::{self, Remembered};
use crate::session::{impl_ui, with, Login, Retry, Target, Worker};
use crate::{live, roll, AdminScreen, AdminWindow, AuditRow, CandidateRow, VoterRow};

impl_ui!(AdminWindow);

/// Newest audit entries kept on screen.
const AUDIT_SHOWN: usize = 2_000;

/// How the window starts.
#[derive(Default, Clone)]
pub struct AdminOptions {
    /// Server, HOST:PORT (else the remembered one, else `localhost:7443`).
    pub server: Option<String>,
    /// CA file (else the remembered one).
    pub ca: Option<PathBuf>,
    /// Admin name to fill in.
    pub user: Option<String>,
    /// Sign in at once with this password (for scripts and screenshots).
    pub password: Option<Secret>,
    /// Tab to show first: voters, candidates, election, results or audit.
    pub tab: Option<String>,
    /// Where server and CA are remembered (`None`: nowhere).
    pub remember: Option<PathBuf>,
}

/// Entry point for the admin app (and its tests): wires `ui` to a new
/// worker thread and fills the sign-in form.
pub fn init(ui: &AdminWindow, options: AdminOptions) -> std::io::Result<()> {
    let worker = Worker::start()?;
    let remembered = options
        .remember
        .as_deref()
        .map(config::load)
        .unwrap_or_default();
    let server = options.server.clone().unwrap_or(remembered.server);
    let ca = options
        .ca
        .as_ref()
        .map_or(remembered.ca, |p| p.display().to_string());
    ui.set_server(if server.is_empty() {
        "localhost:7443".into()
    } else {
        server.into()
    });
    ui.set_ca_file(ca.into());
    ui.set_admin_name(options.user.clone().unwrap_or_default().into());
    let tabs = ["voters", "candidates", "election", "results", "audit"];
    if let Some(i) = options
        .tab
        .as_deref()
        .and_then(|t| tabs.iter().position(|n| *n == t))
    {
        ui.set_tab(i as i32);
    }

    let remember = options.remember.clone();
    ui.on_sign_in(with(ui, &worker, move |ui, w| {
        sign_in(ui, w, remember.clone())
    }));
    ui.on_sign_out(with(ui, &worker, |ui, w| {
        w.call(
            ui,
            |s| {
                s.sign_out();
                Ok(())
            },
            |ui, ()| clear(ui),
        );
    }));
    ui.on_reconnect(with(ui, &worker, |ui, w| {
        let again = w.clone();
        w.call(ui, |s| s.reconnect(), move |ui, ()| refresh_all(ui, &again));
    }));
    ui.on_filter_voters(with(ui, &worker, |ui, _| filter_voters(ui)));
    ui.on_refresh_roll(with(ui, &worker, refresh_roll));
    ui.on_add_voter(with(ui, &worker, add_voter));
    ui.on_import_voters(with(ui, &worker, import_voters));
    ui.on_add_candidate(with(ui, &worker, add_candidate));
    ui.on_refresh_audit(with(ui, &worker, refresh_audit));
    let (weak, w) = (ui.as_weak(), worker.clone());
    ui.on_confirmed(move |action, subject| {
        if let Some(ui) = weak.upgrade() {
            confirmed(&ui, &w, &action, &subject);
        }
    });

    if let Some(password) = options.password.filter(|_| !ui.get_admin_name().is_empty()) {
        ui.set_password(password.expose().into());
        ui.invoke_sign_in();
    }
    Ok(())
}

fn sign_in(ui: &AdminWindow, worker: &Worker, remember: Option<PathBuf>) {
    let (server, ca) = (ui.get_server().to_string(), ui.get_ca_file().to_string());
    let login = Login::Admin {
        name: ui.get_admin_name().trim().to_string(),
        password: Secret::new(ui.get_password().as_str()),
    };
    let again = worker.clone();
    worker.call(
        ui,
        move |s| {
            s.connect(Target::new(&server, &ca)?)?;
            s.sign_in(login)?;
            if let Some(path) = remember {
                config::save(&path, &Remembered { server, ca });
            }
            Ok(())
        },
        move |ui, ()| {
            ui.set_password(SharedString::new());
            ui.set_screen(AdminScreen::Main);
            refresh_all(ui, &again);
        },
    );
}

/// Loads everything a signed-in admin sees and (re)starts the live tally.
fn refresh_all(ui: &AdminWindow, worker: &Worker) {
    refresh_status(ui, worker);
    refresh_roll(ui, worker);
    refresh_candidates(ui, worker);
    refresh_audit(ui, worker);
    let weak = ui.as_weak();
    worker.call(
        ui,
        move |s| {
            s.watch_tally(move |tally| {
                let _ = weak.upgrade_in_event_loop(move |ui| show_tally(&ui, tally));
            })
        },
        |_, ()| {},
    );
}

fn refresh_status(ui: &AdminWindow, worker: &Worker) {
    worker.call(
        ui,
        |s| s.run(Retry::Yes, |c| c.status()),
        |ui, st| show_status(ui, &st),
    );
}

fn show_status(ui: &AdminWindow, status: &ElectionStatus) {
    ui.set_election_state(status.state.as_str().into());
    ui.set_status_line(counts(status.candidates, status.voters, status.voted).into());
    let opened = status.opened_at.as_deref().map(|t| format!("Opened {t}."));
    let closed = status.closed_at.as_deref().map(|t| format!(" Closed {t}."));
    ui.set_opened_closed(
        format!(
            "{}{}",
            opened.unwrap_or_default(),
            closed.unwrap_or_default()
        )
        .into(),
    );
}

fn counts(candidates: u64, voters: u64, voted: u64) -> String {
    format!("{candidates} candidates · {voters} voters on the roll · {voted} voted")
}

/// A pushed tally also carries the state and the counts: the header follows it.
fn show_tally(ui: &AdminWindow, tally: Result<Tally, NetError>) {
    match tally {
        Ok(t) => {
            ui.set_election_state(t.state.as_str().into());
            ui.set_status_line(counts(t.candidates.len() as u64, t.voters, t.voted).into());
            ui.set_tally(rows(live::rows(&t)));
            ui.set_tally_summary(live::summary(&t).into());
            ui.set_tally_note("Updated by the server as each vote is counted.".into());
            // The roll is not reloaded on every vote (it may be large): say it changed.
            let all = ui.get_all_voters();
            let voted = all.iter().filter(|v| v.voted).count() as u64;
            ui.set_roll_outdated(all.row_count() as u64 != t.voters || voted != t.voted);
        }
        Err(e) => ui.set_tally_note(
            format!(
                "Live results interrupted: {e} ({}). Reconnecting…",
                e.code()
            )
            .into(),
        ),
    }
}

fn rows<T: Clone + 'static>(items: Vec<T>) -> ModelRc<T> {
    ModelRc::from(Rc::new(VecModel::from(items)))
}

fn refresh_roll(ui: &AdminWindow, worker: &Worker) {
    worker.call(ui, |s| s.run(Retry::Yes, |c| c.voters()), show_roll);
}

fn show_roll(ui: &AdminWindow, voters: Vec<Voter>) {
    let all: Vec<VoterRow> = voters
        .into_iter()
        .map(|v| VoterRow {
            srn: v.srn.as_str().into(),
            name: format!("{} {}", v.first_name, v.last_name).into(),
            voted: v.voted,
        })
        .collect();
    ui.set_all_voters(rows(all));
    ui.set_roll_outdated(false);
    filter_voters(ui);
}

/// Shows the voters whose SRN or name contains the search text.
fn filter_voters(ui: &AdminWindow) {
    let needle = ui.get_voter_search().trim().to_lowercase();
    let all = ui.get_all_voters();
    let voted = all.iter().filter(|v| v.voted).count();
    let shown: Vec<VoterRow> = all
        .iter()
        .filter(|v| {
            needle.is_empty()
                || v.srn.to_lowercase().contains(&needle)
                || v.name.to_lowercase().contains(&needle)
        })
        .collect();
    let matching = if needle.is_empty() {
        String::new()
    } else {
        format!(" · {} match the search", shown.len())
    };
    ui.set_roll_summary(format!("{} voters, {voted} voted{matching}", all.row_count()).into());
    ui.set_voters(rows(shown));
}

/// Validation errors of typed fields, in the library's words.
fn invalid(e: voting_core::VotingError) -> NetError {
    NetError::Config(e.to_string())
}

fn add_voter(ui: &AdminWindow, worker: &Worker) {
    let dob = ui.get_new_dob();
    let voter = NewVoter::parse(
        &ui.get_new_srn(),
        &ui.get_new_first_name(),
        &ui.get_new_last_name(),
        Some(dob.as_str()),
    );
    let again = worker.clone();
    worker.call(
        ui,
        move |s| {
            let voter = voter.map_err(invalid)?;
            let credential = s.run(Retry::No, |c| c.add_voter(&voter))?;
            Ok((voter.srn, credential))
        },
        move |ui, (srn, credential)| {
            for clear in [
                AdminWindow::set_new_srn,
                AdminWindow::set_new_first_name,
                AdminWindow::set_new_last_name,
                AdminWindow::set_new_dob,
            ] {
                clear(ui, SharedString::new());
            }
            show_credential(ui, &srn, &credential);
            refresh_roll(ui, &again);
        },
    );
}

fn show_credential(ui: &AdminWindow, srn: &Srn, credential: &Secret) {
    ui.set_credential_srn(srn.as_str().into());
    ui.set_credential(credential.expose().into());
}

fn import_voters(ui: &AdminWindow, worker: &Worker) {
    let (csv, out) = (ui.get_import_file(), ui.get_import_credentials_file());
    let (csv, out) = (PathBuf::from(csv.trim()), PathBuf::from(out.trim()));
    ui.set_importing(true);
    ui.set_import_progress(0.0);
    ui.set_import_stage("Reading the file…".into());
    ui.set_import_result(SharedString::new());
    let (weak, again) = (ui.as_weak(), worker.clone());
    worker.call(
        ui,
        move |s| {
            let outcome = roll::import(s, &csv, &out, &mut |stage, done, total| {
                let stage = match stage {
                    ImportStage::Uploading => "Uploading",
                    ImportStage::Hashing => "Generating credentials",
                };
                let text = format!("{stage}: {done} of {total}");
                let progress = if total == 0 { 0.0 } else { done as f32 / total as f32 };
                let _ = weak.upgrade_in_event_loop(move |ui| {
                    ui.set_import_stage(text.into());
                    ui.set_import_progress(progress);
                });
            })
            .map(|count| (count, out));
            let _ = weak.upgrade_in_event_loop(|ui| ui.set_importing(false));
            outcome
        },
        move |ui, (count, out)| {
            ui.set_import_result(
                format!(
                    "{count} voters imported. Their credentials are in {} (readable only by you): hand them out, then delete the file.",
                    out.display()
                )
                .into(),
            );
            refresh_roll(ui, &again);
        },
    );
}

fn refresh_candidates(ui: &AdminWindow, worker: &Worker) {
    worker.call(
        ui,
        |s| s.run(Retry::Yes, |c| c.candidates()),
        |ui, list: Vec<Candidate>| {
            ui.set_candidates(rows(
                list.into_iter()
                    .map(|c| CandidateRow {
                        srn: c.srn.as_str().into(),
                        name: c.name.into(),
                        affiliation: c.affiliation.unwrap_or_default().into(),
                    })
                    .collect(),
            ));
        },
    );
}

fn add_candidate(ui: &AdminWindow, worker: &Worker) {
    let affiliation = ui.get_new_candidate_affiliation();
    let candidate = Candidate::parse(
        &ui.get_new_candidate_srn(),
        &ui.get_new_candidate_name(),
        Some(affiliation.as_str()),
    );
    let again = worker.clone();
    worker.call(
        ui,
        move |s| {
            let candidate = candidate.map_err(invalid)?;
            s.run(Retry::No, |c| c.add_candidate(&candidate))
        },
        move |ui, ()| {
            ui.set_new_candidate_srn(SharedString::new());
            ui.set_new_candidate_name(SharedString::new());
            ui.set_new_candidate_affiliation(SharedString::new());
            refresh_candidates(ui, &again);
        },
    );
}

fn refresh_audit(ui: &AdminWindow, worker: &Worker) {
    worker.call(
        ui,
        |s| {
            s.run(Retry::Yes, |c| {
                let mut entries: Vec<AuditEntry> = Vec::new();
                loop {
                    let after = entries.last().map_or(0, |e| e.id);
                    let page = c.audit_log(after, None)?;
                    let full = page.len() >= AUDIT_PAGE_MAX as usize;
                    entries.extend(page);
                    let excess = entries.len().saturating_sub(AUDIT_SHOWN);
                    entries.drain(..excess);
                    if !full {
                        return Ok(entries);
                    }
                }
            })
        },
        |ui, entries| {
            ui.set_audit(rows(
                entries
                    .into_iter()
                    .rev()
                    .map(|e| AuditRow {
                        at: e.at.into(),
                        actor: e.actor.into(),
                        action: e.action.into(),
                        detail: e.detail.into(),
                    })
                    .collect(),
            ));
        },
    );
}

/// The confirmation dialog was accepted: do what it asked about.
fn confirmed(ui: &AdminWindow, worker: &Worker, action: &str, subject: &str) {
    let srn = Srn::parse(subject).map_err(invalid);
    let again = worker.clone();
    match action {
        "open" | "close" => {
            let open = action == "open";
            worker.call(
                ui,
                move |s| {
                    s.run(Retry::No, |c| {
                        if open {
                            c.open_election()
                        } else {
                            c.close_election()
                        }
                    })
                },
                move |ui, status| {
                    show_status(ui, &status);
                    refresh_audit(ui, &again);
                },
            );
        }
        "remove-voter" => worker.call(
            ui,
            move |s| {
                s.run(Retry::No, |c| {
                    c.remove_voter(srn.as_ref().map_err(clone_err)?)
                })
            },
            move |ui, ()| refresh_roll(ui, &again),
        ),
        "reset-credential" => worker.call(
            ui,
            move |s| {
                let srn = srn.map_err(|e| clone_err(&e))?;
                let credential = s.run(Retry::Yes, |c| c.reset_credential(&srn))?;
                Ok((srn, credential))
            },
            |ui, (srn, credential)| show_credential(ui, &srn, &credential),
        ),
        "remove-candidate" => worker.call(
            ui,
            move |s| {
                s.run(Retry::No, |c| {
                    c.remove_candidate(srn.as_ref().map_err(clone_err)?)
                })
            },
            move |ui, ()| refresh_candidates(ui, &again),
        ),
        other => log::warn!("unknown confirmation '{other}'"),
    }
}

fn clone_err(e: &NetError) -> NetError {
    NetError::Config(e.to_string())
}

/// Back to the sign-in form, with nothing of the last session on screen.
fn clear(ui: &AdminWindow) {
    ui.set_screen(AdminScreen::SignIn);
    ui.set_connection_lost(false);
    ui.set_all_voters(rows(Vec::new()));
    ui.set_voters(rows(Vec::new()));
    ui.set_candidates(rows(Vec::new()));
    ui.set_tally(rows(Vec::new()));
    ui.set_audit(rows(Vec::new()));
    ui.set_credential(SharedString::new());
    ui.set_import_result(SharedString::new());
}
