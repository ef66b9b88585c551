#!/usr/bin/env bash
# Makes a development CA and a server certificate for localhost / 127.0.0.1 / ::1.
#   certs/make-dev-certs.sh [OUT_DIR] [--force]
# Writes OUT_DIR (default certs/dev): ca.pem ca.key server.pem server.key.
# Does nothing when the files exist, unless --force. Never commit these keys.
set -euo pipefail

out="$(cd "$(dirname "$0")" && pwd)/dev"
force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
        -*) echo "unknown option: $arg (see --help)" >&2; exit 2 ;;
        *) out="$arg" ;;
    esac
done

have_all=1
for f in ca.pem ca.key server.pem server.key; do
    [[ -s "$out/$f" ]] || have_all=0
done
if [[ $force == 0 && $have_all == 1 ]]; then
    echo "dev certificates already in $out (use --force to remake them)"
    exit 0
fi
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)" >&2; exit 1; }

# openssl chatters on stderr even when all goes well: show it only on failure.
quietly() { local log; log="$("$@" 2>&1)" || { echo "$log" >&2; return 1; }; }

# Keys are born unreadable to others, in a scratch dir, and only moved into
# place once the chain verifies: a failed run never leaves a half-made set.
umask 077
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

quietly openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/ca.key" -out "$work/ca.pem" -days 3650 -subj "/CN=voting dev CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
# `req -newkey` writes the key as unencrypted PKCS#8 PEM.
quietly openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$work/server.key" -out "$work/server.csr" -subj "/CN=localhost"
printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" > "$work/ext.cnf"
quietly openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
    -CAcreateserial -out "$work/server.pem" -days 365 -extfile "$work/ext.cnf"
quietly openssl verify -CAfile "$work/ca.pem" "$work/server.pem"

install -m 600 "$work/ca.key" "$work/server.key" "$out/"
install -m 644 "$work/ca.pem" "$work/server.pem" "$out/"
echo "dev certificates written to $out:"
echo "  server:  voting serve --cert $out/server.pem --key $out/server.key"
echo "  clients: --ca $out/ca.pem (or VOTING_CA)"
