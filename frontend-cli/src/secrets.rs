//! Secrets never come from the command line: an environment variable (for
//! scripts) or a prompt on the terminal that does not echo.

use std::io::IsTerminal;

use voting_core::Secret;

use crate::usage;

/// The secret in `var`, or typed at a prompt when there is a terminal.
fn obtain(var: &str, prompt: &str) -> anyhow::Result<Secret> {
    if let Ok(value) = std::env::var(var) {
        return Ok(Secret::new(value));
    }
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "no terminal to ask on: set {var} in the environment"
        )));
    }
    let typed = rpassword::prompt_password(prompt)?;
    Ok(Secret::new(typed.trim_end_matches(['\r', '\n'])))
}

/// An admin's password, to sign in.
pub fn admin_password(name: &str) -> anyhow::Result<Secret> {
    obtain("VOTING_PASSWORD", &format!("Password for {name}: "))
}

/// A new admin's password, typed twice on a terminal.
pub fn new_admin_password(name: &str) -> anyhow::Result<Secret> {
    let first = admin_password(name)?;
    if std::env::var_os("VOTING_PASSWORD").is_none() {
        let again = rpassword::prompt_password("Repeat the password: ")?;
        if again.trim_end_matches(['\r', '\n']) != first.expose() {
            return Err(usage("the passwords differ; nothing was created"));
        }
    }
    Ok(first)
}

/// A voter's credential.
pub fn voter_credential(srn: &str) -> anyhow::Result<Secret> {
    obtain("VOTING_CREDENTIAL", &format!("Credential for {srn}: "))
}
