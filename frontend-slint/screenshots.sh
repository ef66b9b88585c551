#!/usr/bin/env bash
# Screenshots of voting-admin and voting-voter under Xvfb, checked not blank.
#
#   frontend-slint/screenshots.sh
#
# Starts a throwaway election: a database `voting_shot_<random>` on the server of
# VOTING_TEST_DATABASE_URL (or VOTING_DATABASE_URL; scripts/lib/provision.sh
# exports both), dev certificates in a temp dir, `voting serve` on a free port,
# seeded with the CLI (candidates, an imported roll, a few votes). Then runs each
# app under Xvfb, taking PNGs of the main screens into target/screenshots/, and
# stops everything and drops the database, whatever happens.
#
# The apps reach their screens without clicks through documented hooks:
# VOTING_PASSWORD (+ VOTING_ADMIN) signs the admin in, VOTING_ADMIN_TAB picks a
# tab; VOTING_SRN + VOTING_CREDENTIAL sign a voter in, VOTING_CANDIDATE opens the
# confirmation for that candidate (it never casts a vote: the script presses
# Enter with xdotool, as a person would, to reach the receipt).
#
# Needs Xvfb, ImageMagick, xwininfo, xdotool and xclip (installed with apt when
# missing and possible);
# without them it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
skip() { say "screenshots skipped: $*"; exit 0; }

# The apps load libxkbcommon-x11 at run time (winit) and need a font.
if ! command -v Xvfb >/dev/null || ! command -v import >/dev/null || ! command -v xwininfo >/dev/null ||
    ! command -v xdotool >/dev/null || ! command -v xclip >/dev/null ||
    ! ldconfig -p | grep 'libxkbcommon-x11\.so' >/dev/null || [[ -z "$(fc-list 2>/dev/null)" ]]; then
    if command -v apt-get >/dev/null && [[ $EUID -eq 0 ]]; then
        say "installing Xvfb, ImageMagick and X tools"
        export DEBIAN_FRONTEND=noninteractive
        { apt-get update -qq && apt-get install -y -qq xvfb imagemagick x11-utils xdotool xclip \
            libxkbcommon-x11-0 fonts-dejavu-core >/dev/null; } ||
            skip "could not install xvfb, imagemagick, x11-utils, xdotool and xclip with apt"
    else
        skip "Xvfb, ImageMagick, xwininfo, xdotool and xclip are needed (apt-get install xvfb imagemagick x11-utils xdotool xclip, as root)"
    fi
fi
base_url="${VOTING_TEST_DATABASE_URL:-${VOTING_DATABASE_URL:-}}"
[[ -n $base_url ]] || skip "no database: set VOTING_TEST_DATABASE_URL=mysql://user:pass@host:port/ (scripts/test.sh does)"
db_client="$(command -v mariadb || command -v mysql || true)"
[[ -n $db_client ]] || skip "the mariadb client is needed to create the throwaway database"

# mysql://user[:pass]@host[:port]/[database] -> parts, for the mariadb client.
if [[ ! $base_url =~ ^mysql://([^:@/]+)(:([^@]*))?@([^:/]+)(:([0-9]+))?(/.*)?$ ]]; then
    skip "cannot read the database URL (want mysql://user:pass@host:port/)"
fi
db_user="${BASH_REMATCH[1]}" db_pass="${BASH_REMATCH[3]}" db_host="${BASH_REMATCH[4]}" db_port="${BASH_REMATCH[6]:-3306}"
db_name="voting_shot_$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
sql() { MYSQL_PWD="$db_pass" "$db_client" --protocol=TCP -h"$db_host" -P"$db_port" -u"$db_user" -e "$1"; }

say "building the voting CLI and the apps"
cargo build --quiet -p frontend-cli -p frontend-slint --bins
bin="$PWD/target/debug"
out="$PWD/target/screenshots"
mkdir -p "$out"
rm -f "$out"/*.png

work="$(mktemp -d)"
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    sql "DROP DATABASE IF EXISTS \`$db_name\`" 2>/dev/null || true
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

sql "CREATE DATABASE \`$db_name\` CHARACTER SET utf8mb4"
export VOTING_DATABASE_URL="${base_url%%@*}@${db_host}:${db_port}/$db_name"

certs/make-dev-certs.sh "$work/certs" >/dev/null
port=$((20000 + RANDOM % 20000))
"$bin/voting" db init >/dev/null
VOTING_PASSWORD=screenshot-password "$bin/voting" db add-admin officer </dev/null >/dev/null
"$bin/voting" serve --bind "127.0.0.1:$port" --cert "$work/certs/server.pem" \
    --key "$work/certs/server.key" >"$work/server.log" 2>&1 &
pids+=($!)

export VOTING_SERVER="localhost:$port" VOTING_CA="$work/certs/ca.pem" VOTING_ADMIN=officer
for _ in $(seq 1 100); do
    answer="$("$bin/voting" verify AAAA-AAAA 2>&1 || true)"
    [[ $answer == *connection_failed* ]] || break
    sleep 0.1
done

say "seeding an election through the CLI"
admin() { VOTING_PASSWORD=screenshot-password "$bin/voting" admin "$@" >/dev/null; }
admin candidate add C1 --name "Ada Lovelace" --affiliation "Analytical Engines"
admin candidate add C2 --name "Grace Hopper" --affiliation "Compilers United"
admin candidate add C3 --name "Alan Turing"
cat >"$work/roll.csv" <<'CSV'
srn,first_name,last_name,dob
S1,Edsger,Dijkstra,1930-05-11
S2,Barbara,Liskov,1939-11-07
S3,Donald,Knuth,1938-01-10
S4,Frances,Allen,1932-08-04
S5,John,Backus,
S6,Margaret,Hamilton,1936-08-17
S7,Ken,Thompson,
S8,Radia,Perlman,1951-12-18
CSV
admin voter import "$work/roll.csv" --credentials-out "$work/credentials.csv"
credential() { awk -F, -v srn="$1" '$1 == srn { print $4 }' "$work/credentials.csv"; }
admin election open
for vote in S1:C1 S2:C2 S3:C1 S5:C3 S6:C1; do
    VOTING_CREDENTIAL="$(credential "${vote%%:*}")" \
        "$bin/voting" vote --srn "${vote%%:*}" --candidate "${vote##*:}" --yes >/dev/null
done

display=""
for n in $(seq 77 99); do
    [[ -e /tmp/.X11-unix/X$n || -e /tmp/.X$n-lock ]] || { display=":$n"; break; }
done
[[ -n $display ]] || skip "no free X display number"
Xvfb "$display" -screen 0 1280x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
export DISPLAY="$display"
for _ in $(seq 1 50); do xwininfo -root >/dev/null 2>&1 && break; sleep 0.1; done

# launch NAME TITLE COMMAND...: runs the app and waits for its window; sets
# $app_pid and $window.
launch() {
    local name="$1" title="$2"
    shift 2
    window=""
    "$@" >"$work/$name.log" 2>&1 &
    app_pid=$!
    for _ in $(seq 1 100); do
        window="$(xwininfo -root -tree 2>/dev/null | awk -v t="\"$title\"" '!found && index($0, t) { print $1; found = 1 }')"
        [[ -n $window ]] && return 0
        kill -0 "$app_pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$work/$name.log" >&2
    echo "$name: no window titled $title" >&2
    return 1
}

# grab NAME SETTLE: lets the app talk to the server and draw for SETTLE
# seconds, then saves its window and checks the picture is not blank (a blank
# or failed grab has one or two colours; a screen of text has hundreds).
grab() {
    local name="$1" colours
    sleep "$2"
    import -window "$window" "$out/$name.png"
    colours="$(identify -format '%k' "$out/$name.png")"
    if ((colours < 64)); then
        echo "$name.png looks blank ($colours colours)" >&2
        return 1
    fi
    say "$name.png: $(identify -format '%wx%h' "$out/$name.png"), $colours colours"
}

# changed BEFORE AFTER WHAT: fails unless the two screenshots differ.
changed() {
    if compare -metric AE "$out/$1.png" "$out/$2.png" null: >/dev/null 2>&1; then
        echo "$2.png is the same picture as $1.png: $3 did not happen" >&2
        return 1
    fi
}

stop_app() {
    kill "$app_pid" 2>/dev/null || true
    wait "$app_pid" 2>/dev/null || true
}

# shoot NAME TITLE SETTLE COMMAND...: one app, one screenshot.
shoot() {
    local name="$1" title="$2" settle="$3"
    shift 3
    launch "$name" "$title" "$@"
    grab "$name" "$settle"
    stop_app
}

say "taking screenshots on $display"
admin_app="$bin/voting-admin"
voter_app="$bin/voting-voter"
XDG_CONFIG_HOME="$work/config" launch admin-sign-in "Voting — administration" "$admin_app"
grab admin-sign-in 1
# The About box (Slint's attribution): click About on the sign-in form.
timeout 10 xdotool mousemove 592 482 click 1
grab admin-about 1
changed admin-sign-in admin-about "opening the About box"
stop_app
for tab in voters candidates election results audit; do
    VOTING_PASSWORD=screenshot-password VOTING_ADMIN_TAB=$tab XDG_CONFIG_HOME="$work/config" \
        shoot "admin-$tab" "Voting — administration" 3 "$admin_app"
done
shoot voter-sign-in "Voting" 2 "$voter_app"
VOTING_SRN=S4 VOTING_CREDENTIAL="$(credential S4)" shoot voter-ballot "Voting" 3 "$voter_app"
VOTING_SRN=S4 VOTING_CREDENTIAL="$(credential S4)" VOTING_CANDIDATE=C2 launch voter-confirm "Voting" "$voter_app"
grab voter-confirm 3
# Enter accepts the confirmation (there is no window manager: give the window
# the keyboard focus first).
timeout 10 xdotool windowfocus --sync "$window" key Return
grab voter-receipt 3
changed voter-confirm voter-receipt "casting the vote with Enter"
# "Copy" puts the receipt on the clipboard (read while the app still owns it).
timeout 10 xdotool mousemove 716 206 click 1
for _ in $(seq 1 20); do
    copied="$(timeout 2 xclip -selection clipboard -o 2>/dev/null || true)"
    [[ -n $copied ]] && break
    sleep 0.1
done
if [[ ! $copied =~ ^[A-Z2-7]{4}(-[A-Z2-7]{4})+$ ]]; then
    echo "Copy did not put the receipt on the clipboard (got '$copied')" >&2
    exit 1
fi
say "Copy put the receipt on the clipboard: $copied"
# Live results (this server publishes them live): the Results button.
timeout 10 xdotool mousemove 560 31 click 1
grab voter-results 2
changed voter-receipt voter-results "opening the results"
stop_app
VOTING_SRN=S1 VOTING_CREDENTIAL="$(credential S1)" shoot voter-already-voted "Voting" 3 "$voter_app"
say "screenshots in $out"
