# shellcheck shell=bash
# Sourced by scripts/run.sh and scripts/test.sh. `provision_database` makes sure a
# MariaDB server answers on 127.0.0.1:$VOTING_DB_PORT (installing it with apt and
# starting it without systemd when needed), that the database user `voting` may
# use `voting` and every `voting_*` database, and exports
#   VOTING_DATABASE_URL       mysql://voting:PW@127.0.0.1:PORT/voting
#   VOTING_TEST_DATABASE_URL  mysql://voting:PW@127.0.0.1:PORT/  (tests add a name)
# Variables the caller already set are kept; with VOTING_TEST_DATABASE_URL set,
# nothing is provisioned at all.
#
# Knobs: VOTING_DB_PORT (3306), VOTING_DB_PASSWORD (voting-dev-password), and for a
# server this script starts, VOTING_DB_DATADIR (/var/lib/mysql). Any other port
# gets its own socket and pid file, so a private instance never collides with the
# system one.

VOTING_DB_PORT="${VOTING_DB_PORT:-3306}"
VOTING_DB_PASSWORD="${VOTING_DB_PASSWORD:-voting-dev-password}"
VOTING_DB_DATADIR="${VOTING_DB_DATADIR:-/var/lib/mysql}"
if [[ $VOTING_DB_PORT == 3306 ]]; then db_run=/run/mysqld/mysqld; else db_run="/run/mysqld/mysqld-$VOTING_DB_PORT"; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

can_be_root() { [[ $EUID -eq 0 ]] || command -v sudo >/dev/null; }
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "this step needs root, and sudo is not installed: $*"
    fi
}

# apt-get install, refreshing the package lists once per run (a fresh container has none).
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ -z ${apt_updated:-} ]]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root apt-get install -y -qq "$@" >/dev/null
}

db_client() { command -v mariadb || command -v mysql || true; }
db_server() {
    local candidate
    for candidate in /usr/sbin/mariadbd /usr/sbin/mysqld "$(command -v mariadbd || true)"; do
        [[ -n $candidate && -x $candidate ]] && { echo "$candidate"; return; }
    done
}

# True when a MySQL-speaking server is on the port: it greets every new connection
# with a packet before any sign-in (even one it refuses, e.g. from a host it does
# not know), so this needs no account.
db_answers() {
    local greeting
    # shellcheck disable=SC2016 # $1 is the inner shell's argument
    greeting="$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && head -c 4 <&3 | od -An -tx1' \
        _ "$VOTING_DB_PORT" 2>/dev/null)" || return 1
    [[ -n ${greeting// /} ]]
}

start_mariadb() {
    local server="$1" log="$VOTING_DB_DATADIR/mariadbd.err"
    say "starting MariaDB on 127.0.0.1:$VOTING_DB_PORT, data in $VOTING_DB_DATADIR (no systemd)"
    as_root mkdir -p /run/mysqld
    as_root chown mysql:mysql /run/mysqld
    if ! as_root test -d "$VOTING_DB_DATADIR/mysql"; then
        as_root mariadb-install-db --user=mysql --datadir="$VOTING_DB_DATADIR" >/dev/null
    fi
    # Loopback only: a development database has no business on the network. The
    # log goes to the datadir, so the error of a background start is never lost.
    as_root start-stop-daemon --start --oknodo --background --pidfile "$db_run.pid" \
        --exec "$server" -- --user=mysql --datadir="$VOTING_DB_DATADIR" \
        --bind-address=127.0.0.1 --port="$VOTING_DB_PORT" --socket="$db_run.sock" \
        --pid-file="$db_run.pid" --log-error="$log"
    local waited
    for waited in $(seq 1 60); do
        db_answers && return 0
        sleep 0.5
    done
    as_root tail -n 20 "$log" >&2 || true
    die "MariaDB did not answer on 127.0.0.1:$VOTING_DB_PORT within $((waited / 2)) s (log: $log)"
}

# Runs SQL as the database root: through the unix socket as the OS root user
# (how a fresh Debian install authenticates root), else over TCP as root
# without a password (how some machines are set up).
root_sql() {
    local client
    client="$(db_client)"
    if can_be_root && as_root "$client" -S "$db_run.sock" -uroot -e "SELECT 1" >/dev/null 2>&1; then
        as_root "$client" -S "$db_run.sock" -uroot -e "$1"
    elif "$client" --protocol=TCP -h127.0.0.1 -P"$VOTING_DB_PORT" -uroot --password= \
            -e "SELECT 1" >/dev/null 2>&1; then
        "$client" --protocol=TCP -h127.0.0.1 -P"$VOTING_DB_PORT" -uroot --password= -e "$1"
    else
        die "cannot sign in to MariaDB as root (unix socket $db_run.sock as OS root, or TCP without password).
Create the user yourself, or set VOTING_TEST_DATABASE_URL=mysql://USER:PW@HOST:PORT/"
    fi
}

# The mariadb client as `voting` over TCP, like the server and the tests connect.
# The password goes through the environment, not the process list.
voting_sql() {
    MYSQL_PWD="$VOTING_DB_PASSWORD" "$(db_client)" --protocol=TCP -h127.0.0.1 \
        -P"$VOTING_DB_PORT" -uvoting "$@"
}

# True when `voting` signs in and already holds the grant on `voting\_%`.
voting_user_ready() {
    voting_sql -N -r -e "SHOW GRANTS" 2>/dev/null | grep -qF 'voting\_%'
}

create_voting_user() {
    say "creating the database user 'voting'"
    # A SQL string literal: double the backslashes and quotes.
    local pw="${VOTING_DB_PASSWORD//\\/\\\\}" host sql=""
    pw="${pw//\'/\'\'}"
    # MariaDB may see a TCP client from 127.0.0.1 as `localhost`: create both.
    for host in localhost 127.0.0.1; do
        sql+="CREATE USER IF NOT EXISTS 'voting'@'$host' IDENTIFIED BY '$pw';"
        sql+="GRANT ALL PRIVILEGES ON \`voting\`.* TO 'voting'@'$host';"
        # Tests make voting_test_<hex> databases, benchmarks voting_bench_<hex>.
        sql+="GRANT ALL PRIVILEGES ON \`voting\\_%\`.* TO 'voting'@'$host';"
    done
    root_sql "$sql"
    # An existing user keeps its password: others on this server may rely on it.
    voting_user_ready || die "the database user 'voting' cannot sign in over TCP on port \
$VOTING_DB_PORT: if it already existed with another password, set VOTING_DB_PASSWORD to \
that one (or, as DB root: ALTER USER 'voting'@'localhost' IDENTIFIED BY '...'; and the same \
for 'voting'@'127.0.0.1')"
}

# Percent-encodes a URL component (byte by byte, so any password survives).
url_encode() {
    local LC_ALL=C s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        if [[ $c == [A-Za-z0-9._~-] ]]; then out+="$c"; else out+="$(printf '%%%02X' "'$c")"; fi
    done
    printf '%s' "$out"
}
url_decode() { printf '%b' "${1//%/\\x}"; }

# Runs the mariadb client against a mysql://USER:PW@HOST:PORT/DB URL.
url_sql() {
    local url="$1"
    shift
    [[ $url =~ ^mysql://([^:@/]*)(:([^@/]*))?@([^:/]+)(:([0-9]+))?/([^?]*) ]] ||
        die "not a mysql://USER:PW@HOST:PORT/DB URL: $url"
    local m=("${BASH_REMATCH[@]}")
    MYSQL_PWD="$(url_decode "${m[3]}")" "$(db_client)" --protocol=TCP -h"${m[4]}" \
        -P"${m[6]:-3306}" -u"$(url_decode "${m[1]}")" "${m[7]}" "$@"
}

provision_database() {
    if [[ -n ${VOTING_TEST_DATABASE_URL:-} ]]; then
        say "using VOTING_TEST_DATABASE_URL from the environment: nothing provisioned"
        export VOTING_DATABASE_URL="${VOTING_DATABASE_URL:-${VOTING_TEST_DATABASE_URL%/}/voting}"
        return
    fi
    if [[ -z "$(db_server)" || -z "$(db_client)" ]]; then
        say "installing MariaDB (apt-get)"
        apt_install mariadb-server mariadb-client
    fi
    db_answers || start_mariadb "$(db_server)"
    voting_user_ready || create_voting_user
    voting_sql -e "CREATE DATABASE IF NOT EXISTS voting CHARACTER SET utf8mb4"
    local base
    base="mysql://voting:$(url_encode "$VOTING_DB_PASSWORD")@127.0.0.1:$VOTING_DB_PORT"
    export VOTING_DATABASE_URL="${VOTING_DATABASE_URL:-$base/voting}"
    export VOTING_TEST_DATABASE_URL="$base/"
    say "database ready on 127.0.0.1:$VOTING_DB_PORT"
}

# What `cargo build` needs on a fresh Debian: the OpenSSL headers behind native-tls
# and, for the Slint apps, fontconfig's (found through pkg-config).
ensure_build_deps() {
    command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
    if ! command -v pkg-config >/dev/null || ! pkg-config --exists openssl fontconfig; then
        say "installing pkg-config, libssl-dev and libfontconfig1-dev (apt-get)"
        apt_install pkg-config libssl-dev libfontconfig1-dev
    fi
}
