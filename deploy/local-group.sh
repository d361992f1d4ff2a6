#!/usr/bin/env bash
# A clinic group on one machine, for trying hub replicas and site bridges out: a site's
# Mosquitto ("north") bridged to a central Mosquitto, a PostgreSQL cluster of its own, and two
# `spotter hub` replicas on the central broker sharing that database. Everything lives under
# DIR; Ctrl-C stops it all. Then run a station against the site broker (the command is printed).
#
#   deploy/local-group.sh DIR
#
# Ports (override by environment): CENTRAL_PORT=1885, SITE_PORT=1886, PG_PORT=55433,
# HUB_A_PORT=8101, HUB_B_PORT=8102. PostgreSQL comes from Debian's `postgresql` package
# (/usr/lib/postgresql/*/bin); as root it runs as the `postgres` user (it refuses root).
# Passwords are generated into DIR/secrets.env (mode 0600).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
spotter="$repo/.venv/bin/spotter"
dir=${1:?usage: local-group.sh DIR}
central_port=${CENTRAL_PORT:-1885}
site_port=${SITE_PORT:-1886}
pg_port=${PG_PORT:-55433}
hub_ports=("${HUB_A_PORT:-8101}" "${HUB_B_PORT:-8102}")
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $pgbin/initdb ]] || { echo "local-group: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077
secret() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }

secrets="$dir/secrets.env"
if [[ ! -f $secrets ]]; then
    {
        for name in HUB SITE_NORTH HOME PG THERAPIST; do echo "${name}_PASSWORD=$(secret)"; done
    } >"$secrets"
fi
# shellcheck disable=SC1090
source "$secrets"
as_root=$([[ $(id -u) -eq 0 ]] && echo "user root" || true)

# -- the central broker: the hub replicas, and the site's bridge as user site-north ---------
mkdir -p "$dir/central/data" "$dir/north/data"
rm -f "$dir/central/passwd" "$dir/north/passwd"
printf '%s\n' "$HUB_PASSWORD" | "$here/mosquitto/add-user.sh" "$dir/central/passwd" hub >/dev/null
printf '%s\n' "$SITE_NORTH_PASSWORD" | "$here/mosquitto/add-user.sh" "$dir/central/passwd" site-north >/dev/null
"$here/mosquitto/central-acl.sh" north >"$dir/central/acl"
cat >"$dir/central/mosquitto.conf" <<CONF
$as_root
listener $central_port 127.0.0.1
allow_anonymous false
password_file $dir/central/passwd
acl_file $dir/central/acl
persistence true
persistence_location $dir/central/data/
log_dest file $dir/central/mosquitto.log
CONF

# -- the site broker: its stations (home, clinic2), bridged to the central one --------------
printf '%s\n' "$HOME_PASSWORD" | "$here/mosquitto/add-user.sh" "$dir/north/passwd" home >/dev/null
printf '%s\n' "$HOME_PASSWORD" | "$here/mosquitto/add-user.sh" "$dir/north/passwd" clinic2 >/dev/null
{
    cat <<CONF
$as_root
listener $site_port 127.0.0.1
allow_anonymous false
password_file $dir/north/passwd
acl_file $here/mosquitto/acl
persistence true
persistence_location $dir/north/data/
log_dest file $dir/north/mosquitto.log
CONF
    printf '%s\n' "$SITE_NORTH_PASSWORD" | "$here/mosquitto/site-bridge.sh" north "127.0.0.1:$central_port"
} >"$dir/north/mosquitto.conf"

# -- PostgreSQL: a cluster of our own, never the machine's server --------------------------
run_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
if [[ ! -f $dir/pg/data/PG_VERSION ]]; then
    mkdir -p "$dir/pg"
    printf '%s\n' "$PG_PASSWORD" >"$dir/pg/pwfile"
    [[ $(id -u) -eq 0 ]] && chown -R postgres "$dir/pg"
    run_pg "$pgbin/initdb" -D "$dir/pg/data" -U spotter --pwfile="$dir/pg/pwfile" \
        --auth=scram-sha-256 -E UTF8 >/dev/null
    rm -f "$dir/pg/pwfile"
fi
[[ $(id -u) -eq 0 ]] && chmod 711 "$dir"

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    run_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

run_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg" start >/dev/null
database="postgresql://spotter:$PG_PASSWORD@127.0.0.1:$pg_port/postgres"

"$mosquitto" -c "$dir/central/mosquitto.conf" & pids+=($!)
"$mosquitto" -c "$dir/north/mosquitto.conf" & pids+=($!)

for i in 0 1; do
    replica=$([[ $i -eq 0 ]] && echo a || echo b)
    cat >"$dir/hub-$replica.toml" <<CONF
[hub]
name = "group"
data_dir = "$dir/hub-$replica"
port = ${hub_ports[$i]}
replica = "$replica"
share = "hubs"
sites = true
database = "$database"

[mqtt]
enabled = true
host = "127.0.0.1"
port = $central_port
username = "hub"
password = "$HUB_PASSWORD"
CONF
done
if ! "$spotter" hub --config "$dir/hub-a.toml" person list 2>/dev/null | grep -q pat; then
    SPOTTER_HUB_PASSWORD=$THERAPIST_PASSWORD "$spotter" hub --config "$dir/hub-a.toml" \
        person add pat --role therapist >/dev/null
fi
"$spotter" hub --config "$dir/hub-a.toml" & pids+=($!)
"$spotter" hub --config "$dir/hub-b.toml" & pids+=($!)

cat >"$dir/home.toml" <<CONF
[station]
name = "home"
data_dir = "$dir/home"

[dashboard]
port = 8003

[mqtt]
enabled = true
host = "127.0.0.1"
port = $site_port
CONF
cat <<TEXT

A clinic group in $dir: site north (broker 127.0.0.1:$site_port) bridged to the central broker
(127.0.0.1:$central_port); PostgreSQL on 127.0.0.1:$pg_port; hub replicas a and b on
http://127.0.0.1:${hub_ports[0]}/ and http://127.0.0.1:${hub_ports[1]}/ (log in as pat with the
THERAPIST_PASSWORD in $secrets). A station at site north, in another terminal:

  (source $secrets; SPOTTER_MQTT__PASSWORD=\$HOME_PASSWORD $spotter run --config $dir/home.toml --sim over-hold)

Ctrl-C stops everything.
TEXT
wait
