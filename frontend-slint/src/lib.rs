//! # frontend-slint
//!
//! The election's desktop apps, `voting-admin` and `voting-voter`, written in
//! [Slint](https://slint.dev). They are thin: every rule lives in `voting-core`
//! and on the server, every request goes through `voting-net`'s blocking
//! [`voting_net::Client`].
//!
//! - **UI** in `ui/*.slint`, compiled by `build.rs` with debug info, so tests
//!   (and screen readers) find every interactive element by its
//!   `accessible-label`.
//! - **Threads**: the UI thread never touches the network. A worker thread
//!   owns the connection and runs requests in order; results come back with
//!   `slint::Weak::upgrade_in_event_loop`. Live results use a second
//!   connection subscribed to the server's pushed tallies.
//! - **Entry points**: [`admin::init`] and [`voter::init`] wire a window to a
//!   new worker; the binaries parse options and call them, and so do the tests.

pub mod admin;
pub mod config;
mod live;
mod roll;
mod session;
pub mod voter;

/// The code generated from `ui/app.slint`: both windows and their rows.
#[allow(missing_docs, clippy::all)]
mod ui {
    slint::include_modules!();
}
pub use ui::*;
