#!/usr/bin/env bash
# Makes a local certificate authority and the certificates a Spotter clinic broker needs, with
# openssl. Idempotent: files that exist are kept (delete one to make it again).
#
#   make-certs.sh DIR [--server NAME]... [--ip ADDRESS]... [--client NAME]... [--days N]
#
#   DIR            where the files go (created if missing): ca.key ca.crt server.key server.crt
#                  and NAME.key NAME.crt for each client
#   --server NAME  a DNS name stations use to reach the broker (repeatable; default: this
#                  machine's host name and localhost)
#   --ip ADDRESS   an IP address stations use to reach the broker (repeatable; default 127.0.0.1)
#   --client NAME  a client certificate with common name NAME, for mutual TLS (repeatable)
#   --days N       validity of server and client certificates (default 825; the CA: 3650)
#
# Keys are EC P-256, private keys mode 0600. ca.key signs everything: keep it off the broker
# if you can (the broker needs ca.crt, server.crt and server.key only). See
# docs/clinic-broker.md.
set -euo pipefail

usage() { sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() {
    echo "make-certs: $*" >&2
    exit 2
}

DIR=""
SERVERS=()
IPS=()
CLIENTS=()
DAYS=825
while (($#)); do
    case $1 in
        --server) SERVERS+=("${2:?--server needs a name}"); shift 2 ;;
        --ip) IPS+=("${2:?--ip needs an address}"); shift 2 ;;
        --client) CLIENTS+=("${2:?--client needs a name}"); shift 2 ;;
        --days) DAYS=${2:?--days needs a number}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        -*) die "unknown option: $1 (try --help)" ;;
        *)
            [[ -z $DIR ]] || die "one folder only (got $DIR and $1)"
            DIR=$1
            shift
            ;;
    esac
done
[[ -n $DIR ]] || { usage >&2; exit 2; }
[[ $DAYS =~ ^[0-9]+$ ]] || die "--days must be a whole number of days"
((${#SERVERS[@]})) || SERVERS=("$(hostname)" localhost)
((${#IPS[@]})) || IPS=(127.0.0.1)
for name in "${SERVERS[@]}" "${CLIENTS[@]}"; do
    [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "not a usable name: $name"
done
command -v openssl >/dev/null || die "openssl is not installed (apt-get install openssl)"

umask 077  # keys are 0600; the folder and certificates are made readable below
mkdir -p "$DIR"
cd "$DIR"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [[ ! -f ca.key || ! -f ca.crt ]]; then
    newkey ca.key
    openssl req -new -x509 -key ca.key -out ca.crt -days 3650 -sha256 \
        -subj "/CN=Spotter clinic CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
    echo "made ca.crt (Spotter clinic CA)"
fi

# sign NAME CN EXTFILE: NAME.key (made if missing) -> NAME.crt signed by the CA.
sign() {
    local name=$1 cn=$2 ext=$3
    [[ -f $name.crt ]] && return 0
    [[ -f $name.key ]] || newkey "$name.key"
    openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial \
        -out "$name.crt" -days "$DAYS" -sha256 -extfile "$ext" 2>/dev/null
    rm -f "$name.csr"
    echo "made $name.crt (CN=$cn)"
}

ext=$(mktemp)
trap 'rm -f "$ext"' EXIT

san=""
for name in "${SERVERS[@]}"; do san+="DNS:$name,"; done
for ip in "${IPS[@]}"; do san+="IP:$ip,"; done
cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${san%,}
EXT
sign server "${SERVERS[0]}" "$ext"

cat >"$ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EXT
for name in "${CLIENTS[@]}"; do
    [[ $name != ca && $name != server ]] || die "client name $name is taken by the CA or the server"
    sign "$name" "$name" "$ext"
done
# The broker and the stations read the certificates; the keys stay 0600.
chmod 755 .
chmod 644 ./*.crt
