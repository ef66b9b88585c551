//! The glue of `voting-voter`: connect, sign in, eligibility, choose, confirm,
//! cast, receipt; checking a receipt; live results when the server allows.
//! Every rule is the server's; this file only shows what it says.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel};
use voting_core::{Candidate, Eligibility, ErrorCode, ResultsPolicy, Secret, Srn, Tally};
use voting_net::NetError;

use crate::session::{impl_ui, with, Login, Retry, Target, Worker};
use crate::{live, BallotRow, VoterScreen, VoterWindow};

impl_ui!(VoterWindow);

/// How the window starts.
#[derive(Default, Clone)]
pub struct VoterOptions {
    /// Server, HOST:PORT (default `localhost:7443`).
    pub server: Option<String>,
    /// CA file. With a server and a CA the app connects at once.
    pub ca: Option<PathBuf>,
    /// SRN to fill in.
    pub srn: Option<String>,
    /// Sign in at once with this credential (for scripts and screenshots).
    pub credential: Option<Secret>,
    /// After that sign-in, choose this candidate and ask for confirmation
    /// (never casts by itself: the confirmation still needs a person).
    pub candidate: Option<String>,
}

/// Entry point for the voter app (and its tests): wires `ui` to a new worker
/// thread; connects at once when both server and CA are given.
pub fn init(ui: &VoterWindow, options: VoterOptions) -> std::io::Result<()> {
    let worker = Worker::start()?;
    let server = options.server.unwrap_or_else(|| "localhost:7443".into());
    ui.set_server(server.into());
    let has_ca = options.ca.is_some();
    ui.set_ca_file(
        options
            .ca
            .map(|p| p.display().to_string())
            .unwrap_or_default()
            .into(),
    );
    ui.set_srn(options.srn.unwrap_or_default().into());
    let auto_sign_in = options.credential.is_some() && !ui.get_srn().is_empty();
    if let Some(credential) = options.credential {
        ui.set_credential(credential.expose().into());
    }
    let preselect = Rc::new(RefCell::new(options.candidate));

    ui.on_connect(with(ui, &worker, move |ui, w| connect(ui, w, false)));
    ui.on_sign_in(with(ui, &worker, move |ui, w| {
        let preselect = preselect.borrow_mut().take();
        sign_in(ui, w, preselect);
    }));
    ui.on_sign_out(with(ui, &worker, |ui, w| {
        w.call(
            ui,
            |s| {
                s.sign_out();
                Ok(())
            },
            |ui, ()| signed_out(ui),
        );
    }));
    ui.on_reconnect(with(ui, &worker, |ui, w| {
        w.call(ui, |s| s.reconnect(), |_, ()| {})
    }));
    ui.on_cast(with(ui, &worker, cast));
    ui.on_check_receipt(with(ui, &worker, check_receipt));
    ui.on_show_results(with(ui, &worker, show_results));
    ui.on_leave_results(with(ui, &worker, |ui, w| {
        w.call(
            ui,
            |s| {
                s.stop_watching();
                Ok(())
            },
            |_, ()| {},
        );
        ui.set_screen(ui.get_back_screen());
    }));

    if has_ca {
        connect(ui, &worker, auto_sign_in);
    }
    Ok(())
}

fn connect(ui: &VoterWindow, worker: &Worker, then_sign_in: bool) {
    let (server, ca) = (ui.get_server().to_string(), ui.get_ca_file().to_string());
    worker.call(
        ui,
        move |s| {
            let hello = s.connect(Target::new(&server, &ca)?)?;
            Ok((server, hello))
        },
        move |ui, (server, hello)| {
            let results = match hello.results {
                ResultsPolicy::Live => "results are shown live, to everyone",
                ResultsPolicy::AfterClose => "results are published when the election closes",
            };
            ui.set_server_info(
                format!("Connected to {server} ({}); {results}.", hello.server).into(),
            );
            ui.set_screen(VoterScreen::SignIn);
            if then_sign_in {
                ui.invoke_sign_in();
            }
        },
    );
}

/// Eligibility in plain words; `true` when a ballot can be cast now.
fn eligibility_sentence(e: Eligibility) -> (&'static str, bool) {
    match e {
        Eligibility::Eligible => ("You may vote now.", true),
        Eligibility::AlreadyVoted => ("You have already voted. Thank you!", false),
        Eligibility::ElectionNotOpen => (
            "The election is not open: voting has not started yet, or it has ended.",
            false,
        ),
        Eligibility::NotOnRoll => (
            "You are not on the electoral roll, so you cannot vote in this election.",
            false,
        ),
    }
}

fn sign_in(ui: &VoterWindow, worker: &Worker, preselect: Option<String>) {
    let srn = ui.get_srn().trim().to_string();
    let login = Login::Voter {
        srn: srn.clone(),
        credential: Secret::new(ui.get_credential().as_str()),
    };
    worker.call(
        ui,
        move |s| {
            s.sign_in(login)?;
            let eligibility = s.run(Retry::Yes, |c| c.eligibility())?;
            let candidates = match eligibility {
                Eligibility::Eligible => s.run(Retry::Yes, |c| c.candidates())?,
                _ => Vec::new(),
            };
            Ok((eligibility, candidates))
        },
        move |ui, (eligibility, candidates)| {
            ui.set_credential(SharedString::new());
            ui.set_signed_in_as(srn.to_uppercase().into());
            show_ballot(ui, eligibility, candidates);
            let chosen = preselect.and_then(|p| Srn::parse(&p).ok());
            if let Some(c) = ui
                .get_candidates()
                .iter()
                .find(|c| chosen.as_ref().is_some_and(|s| c.srn == s.as_str()))
            {
                ui.set_chosen_srn(c.srn);
                ui.set_chosen_name(c.name);
                ui.set_confirming(true);
            }
        },
    );
}

fn show_ballot(ui: &VoterWindow, eligibility: Eligibility, candidates: Vec<Candidate>) {
    let (sentence, eligible) = eligibility_sentence(eligibility);
    ui.set_eligibility(sentence.into());
    ui.set_eligible(eligible);
    let rows: Vec<BallotRow> = candidates
        .into_iter()
        .map(|c| BallotRow {
            srn: c.srn.as_str().into(),
            name: c.name.into(),
            affiliation: c.affiliation.unwrap_or_default().into(),
        })
        .collect();
    ui.set_candidates(ModelRc::from(Rc::new(VecModel::from(rows))));
    ui.set_chosen_srn(SharedString::new());
    ui.set_chosen_name(SharedString::new());
    ui.set_screen(VoterScreen::Ballot);
}

fn cast(ui: &VoterWindow, worker: &Worker) {
    let chosen = Srn::parse(&ui.get_chosen_srn()).map_err(|e| NetError::Config(e.to_string()));
    let name = ui.get_chosen_name().to_string();
    worker.call(
        ui,
        // Never retried: the ballot may be in the box although the answer was lost.
        move |s| {
            s.run(Retry::No, |c| {
                c.cast(
                    chosen
                        .as_ref()
                        .map_err(|e| NetError::Config(e.to_string()))?,
                )
            })
        },
        move |ui, receipt| {
            ui.set_receipt(receipt.receipt.expose().into());
            let seal = receipt.seal.as_ref().map_or(String::new(), |s| {
                format!(" Write down its seal too: {}", s.short())
            });
            ui.set_receipt_note(
                format!(
                    "Your ballot for {name} ({}) is in the box.{seal}",
                    receipt.candidate
                )
                .into(),
            );
            ui.set_screen(VoterScreen::Receipt);
        },
    );
}

fn check_receipt(ui: &VoterWindow, worker: &Worker) {
    let receipt = ui.get_receipt_to_check().trim().to_string();
    ui.set_receipt_check_result(SharedString::new());
    worker.call(
        ui,
        move |s| s.run(Retry::Yes, |c| c.verify(&receipt)),
        |ui, check| {
            let name = ui
                .get_candidates()
                .iter()
                .find(|c| c.srn == check.candidate.as_str())
                .map(|c| format!(" ({})", c.name))
                .unwrap_or_default();
            let place = check
                .seal
                .as_ref()
                .map_or(String::new(), |s| format!(" as ballot {}", s.short()));
            let chain = match (check.confirm(None), &check.chain) {
                (Err(e), _) => format!(" WARNING: {e}"),
                (Ok(()), Some(c)) => format!(" The ballot chain is intact ({} ballots).", c.length),
                (Ok(()), None) => String::new(),
            };
            ui.set_receipt_check_result(
                format!(
                    "Counted{place}, for candidate {}{name}.{chain}",
                    check.candidate
                )
                .into(),
            );
        },
    );
}

fn show_results(ui: &VoterWindow, worker: &Worker) {
    ui.set_tally(ModelRc::default());
    ui.set_tally_summary(SharedString::new());
    ui.set_tally_note("Asking the server for the results…".into());
    ui.set_screen(VoterScreen::Results);
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

fn show_tally(ui: &VoterWindow, tally: Result<Tally, NetError>) {
    if ui.get_screen() != VoterScreen::Results {
        return;
    }
    match tally {
        Ok(t) => {
            ui.set_tally(ModelRc::from(Rc::new(VecModel::from(live::rows(&t)))));
            ui.set_tally_summary(live::summary(&t).into());
            ui.set_tally_note("Live: the server sends each change as it happens.".into());
        }
        Err(e) if e.code() == ErrorCode::Forbidden => ui.set_tally_note(
            format!(
                "The results are not public yet: this server publishes them when the election closes. ({e}; {})",
                e.code()
            )
            .into(),
        ),
        Err(e) => ui.set_tally_note(
            format!("Live results interrupted: {e} ({}). Reconnecting…", e.code()).into(),
        ),
    }
}

fn signed_out(ui: &VoterWindow) {
    ui.set_signed_in_as(SharedString::new());
    ui.set_srn(SharedString::new());
    ui.set_credential(SharedString::new());
    ui.set_receipt(SharedString::new());
    ui.set_candidates(ModelRc::default());
    ui.set_chosen_srn(SharedString::new());
    ui.set_screen(VoterScreen::SignIn);
}
