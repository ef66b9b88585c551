#!/usr/bin/env bash
# The project's one test command: formatting, lints, docs and every test, against
# a real MariaDB (provisioned on this machine unless VOTING_TEST_DATABASE_URL is
# set; see scripts/lib/provision.sh for the knobs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/provision.sh
source scripts/lib/provision.sh

started=$SECONDS
report_failure() {
    local status=$?
    [[ $status == 0 ]] || say "FAILED (exit $status) after $((SECONDS - started)) s"
}
trap report_failure EXIT

provision_database
ensure_build_deps
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo clippy --version >/dev/null 2>&1 || rustup component add clippy

say "1/5 cargo fmt --check"
cargo fmt --all -- --check

say "2/5 cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

say "3/5 cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

say "4/5 tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked
else
    say "cargo-nextest is not installed (cargo install cargo-nextest --locked): using cargo test"
    cargo test --workspace --locked
fi

# nextest does not run doctests.
say "5/5 doc tests"
cargo test --workspace --doc --locked

say "6/6 GUI screenshots (Slint apps under Xvfb)"; frontend-slint/screenshots.sh

say "all checks passed in $((SECONDS - started)) s"
