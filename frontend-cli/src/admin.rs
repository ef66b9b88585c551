//! `voting admin --user NAME …`: the admin commands, each one a client call.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use voting_core::{roll_file, Candidate, ElectionState, NewVoter, Srn};
use voting_net::{Client, ImportStage};

use crate::{output, secrets, Global};

/// Options of `voting admin`.
#[derive(Args)]
pub struct AdminArgs {
    /// Admin name to sign in as.
    #[arg(long, env = "VOTING_ADMIN")]
    user: String,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// The electoral roll.
    Voter {
        #[command(subcommand)]
        command: VoterCommand,
    },
    /// The candidates.
    Candidate {
        #[command(subcommand)]
        command: CandidateCommand,
    },
    /// Open, close, or show the election.
    Election {
        #[command(subcommand)]
        command: ElectionCommand,
    },
    /// The tally (admins see it whatever the results policy). With --json after
    /// the close: the whole publication (tally, ballot list, audit log, chain heads).
    Results {
        /// Keep showing the tally as it changes.
        #[arg(long)]
        watch: bool,
    },
    /// The audit log: who did what, when.
    Audit,
    /// Publish a closed election into DIR: publication.json (for `voting
    /// recount`), tally.csv, ballots.csv, audit.csv. Never overwrites.
    Export {
        /// Directory to write into (created if missing).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum VoterCommand {
    /// Put a voter on the roll; prints their credential (shown only this once).
    Add {
        /// Registration number.
        srn: String,
        #[arg(long)]
        first_name: String,
        #[arg(long)]
        last_name: String,
        /// Date of birth, YYYY-MM-DD.
        #[arg(long)]
        dob: Option<String>,
    },
    /// Take a voter who has not voted off the roll.
    Remove { srn: String },
    /// List the roll.
    List,
    /// Issue a new credential (the old one stops working); prints it.
    ResetCredential { srn: String },
    /// Import voters from CSV (header srn,first_name,last_name,dob): all rows or none.
    Import {
        /// The CSV file.
        file: PathBuf,
        /// Where to write the generated credentials (created, mode 0600; must not exist).
        #[arg(long)]
        credentials_out: PathBuf,
    },
}

#[derive(Subcommand)]
enum CandidateCommand {
    /// Put a candidate on the ballot (before the election opens).
    Add {
        srn: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        affiliation: Option<String>,
    },
    /// Take a candidate off the ballot (before the election opens).
    Remove { srn: String },
    /// List the candidates.
    List,
}

#[derive(Subcommand)]
enum ElectionCommand {
    /// Start voting.
    Open,
    /// End voting.
    Close,
    /// Show the state and counts.
    Status,
}

/// Entry point of `voting admin`: signs in, then runs one command.
pub fn run(g: &Global, args: AdminArgs) -> anyhow::Result<()> {
    let password = secrets::admin_password(&args.user)?;
    let mut client = g.connect()?;
    client.login_admin(&args.user, &password)?;
    let json = g.json;
    match args.command {
        AdminCommand::Voter { command } => voter(json, &mut client, command),
        AdminCommand::Candidate { command } => candidate(json, &mut client, command),
        AdminCommand::Election { command } => {
            let status = match command {
                ElectionCommand::Open => client.open_election()?,
                ElectionCommand::Close => client.close_election()?,
                ElectionCommand::Status => client.status()?,
            };
            output::status(json, &status);
            Ok(())
        }
        AdminCommand::Results { watch: false }
            if json && client.status()?.state == ElectionState::Closed =>
        {
            output::json(&client.publication()?);
            Ok(())
        }
        AdminCommand::Results { watch } => output::results(json, &mut client, watch),
        AdminCommand::Export { dir } => crate::integrity::export(json, &mut client, &dir),
        AdminCommand::Audit => {
            let entries = client.audit_log(0, None)?;
            output::audit(json, &entries);
            Ok(())
        }
    }
}

fn voter(json: bool, client: &mut Client, command: VoterCommand) -> anyhow::Result<()> {
    match command {
        VoterCommand::Add {
            srn,
            first_name,
            last_name,
            dob,
        } => {
            let voter = NewVoter::parse(&srn, &first_name, &last_name, dob.as_deref())?;
            let credential = client.add_voter(&voter)?;
            output::credential(json, &voter.srn, &credential, "added to the roll");
        }
        VoterCommand::Remove { srn } => {
            let srn = Srn::parse(&srn)?;
            client.remove_voter(&srn)?;
            output::done(json, &srn, "removed from the roll");
        }
        VoterCommand::List => output::voters(json, &client.voters()?),
        VoterCommand::ResetCredential { srn } => {
            let srn = Srn::parse(&srn)?;
            let credential = client.reset_credential(&srn)?;
            output::credential(json, &srn, &credential, "has a new credential");
        }
        VoterCommand::Import {
            file,
            credentials_out,
        } => import(json, client, &file, &credentials_out)?,
    }
    Ok(())
}

fn candidate(json: bool, client: &mut Client, command: CandidateCommand) -> anyhow::Result<()> {
    match command {
        CandidateCommand::Add {
            srn,
            name,
            affiliation,
        } => {
            let candidate = Candidate::parse(&srn, &name, affiliation.as_deref())?;
            client.add_candidate(&candidate)?;
            output::done(json, &candidate.srn, "is standing");
        }
        CandidateCommand::Remove { srn } => {
            let srn = Srn::parse(&srn)?;
            client.remove_candidate(&srn)?;
            output::done(json, &srn, "is no longer standing");
        }
        CandidateCommand::List => output::candidates(json, &client.candidates()?),
    }
    Ok(())
}

fn import(json: bool, client: &mut Client, file: &Path, out: &Path) -> anyhow::Result<()> {
    let roll = roll_file::read_roll_file(file)?;
    let mut credentials_file = roll_file::create_private(out)?;
    let bar = ProgressBar::with_draw_target(Some(roll.len() as u64), draw_target());
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let imported = client.import_voters(&roll, &mut |stage, done, _| {
        bar.set_message(match stage {
            ImportStage::Uploading => "uploading",
            ImportStage::Hashing => "hashing",
        });
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let imported = match imported {
        Ok(v) => v,
        Err(e) => {
            drop(credentials_file);
            let _ = std::fs::remove_file(out);
            return Err(e.into());
        }
    };
    roll_file::write_credentials(&mut credentials_file, &roll, &imported)?;
    if json {
        output::json(&serde_json::json!({
            "imported": imported.len(),
            "credentials_out": out,
        }));
    } else {
        println!(
            "{} voters imported. Their credentials are in {} (readable only by you): hand them out, then delete the file.",
            imported.len(),
            out.display()
        );
    }
    Ok(())
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}
