#!/usr/bin/env bash
# A development server in one command: database, dev certificates, release build,
# schema, a first admin, then `voting serve` on ${VOTING_BIND:-127.0.0.1:7443}.
# Extra arguments go to `voting serve` (e.g. --results after-close).
#   VOTING_ADMIN     the admin to create if missing (admin)
#   VOTING_PASSWORD  its password; without it one is generated and printed once
# Database knobs: see scripts/lib/provision.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/provision.sh
source scripts/lib/provision.sh

provision_database
ensure_build_deps
certs/make-dev-certs.sh
say "building voting (release)"
cargo build --release --locked -p frontend-cli
voting=target/release/voting

"$voting" db init --database-url "$VOTING_DATABASE_URL"
admin="${VOTING_ADMIN:-admin}"
exists="$(url_sql "$VOTING_DATABASE_URL" -N -e "SELECT COUNT(*) FROM admins WHERE name = '${admin//\'/\'\'}'")"
if [[ $exists == 0 ]]; then
    generated=""
    if [[ -z "${VOTING_PASSWORD:-}" ]]; then
        generated="$(openssl rand -base64 24 | tr -d '/+=\n' | cut -c1-20)"
    fi
    VOTING_PASSWORD="${VOTING_PASSWORD:-$generated}" \
        "$voting" db add-admin "$admin" --database-url "$VOTING_DATABASE_URL" </dev/null
    if [[ -n "$generated" ]]; then
        say "admin '$admin' created; its password, shown only now: $generated"
    fi
fi

bind="${VOTING_BIND:-127.0.0.1:7443}"
say "serving on $bind (Ctrl-C stops it). In another shell:"
echo "    export VOTING_SERVER=localhost:${bind##*:} VOTING_CA=$PWD/certs/dev/ca.pem"
echo "    $PWD/$voting admin --user $admin election status"
exec "$voting" serve --database-url "$VOTING_DATABASE_URL" --bind "$bind" \
    --cert certs/dev/server.pem --key certs/dev/server.key "$@"
