#!/usr/bin/env bash
# A whole clinic on one machine, for trying Spotter out (after scripts/setup.sh --clinic, which
# also installs Mosquitto): writes a broker configuration (the deploy ACL, one user per station
# and the hub), a hub configuration with one therapist, and two station configurations, all
# under DIR, then prints the one command each part runs with.
#
#   deploy/local-clinic.sh DIR [PORT]      PORT: the broker's (default 1884; 1883 is often taken)
#
# Passwords are generated and kept in DIR/secrets.env (mode 0600); nothing is printed but paths.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dir=${1:?usage: local-clinic.sh DIR [PORT]}
port=${2:-1884}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mosquitto=$(command -v mosquitto || echo /usr/sbin/mosquitto)
if [[ ! -x $mosquitto || ! -x $repo/.venv/bin/spotter ]]; then
    echo "local-clinic: run scripts/setup.sh --clinic first (Spotter and Mosquitto)" >&2
    exit 2
fi
umask 077
secret() { head -c 18 /dev/urandom | base64 | tr -d '/+=' ; }

secrets="$dir/secrets.env"
if [[ ! -f $secrets ]]; then
    {
        echo "HUB_MQTT_PASSWORD=$(secret)"
        echo "HOME_MQTT_PASSWORD=$(secret)"
        echo "CLINIC2_MQTT_PASSWORD=$(secret)"
        echo "THERAPIST_PASSWORD=$(secret)"
    } >"$secrets"
fi
# shellcheck disable=SC1090
source "$secrets"

mkdir -p "$dir/broker/data"
rm -f "$dir/broker/passwd"
printf '%s\n' "$HUB_MQTT_PASSWORD" | "$here/mosquitto/add-user.sh" --quiet "$dir/broker/passwd" hub >/dev/null
printf '%s\n' "$HOME_MQTT_PASSWORD" | "$here/mosquitto/add-user.sh" --quiet "$dir/broker/passwd" home >/dev/null
printf '%s\n' "$CLINIC2_MQTT_PASSWORD" | "$here/mosquitto/add-user.sh" --quiet "$dir/broker/passwd" clinic2 >/dev/null
cat >"$dir/broker/mosquitto.conf" <<CONF
$( [[ $(id -u) -eq 0 ]] && echo "user root" )
listener $port 127.0.0.1
allow_anonymous false
password_file $dir/broker/passwd
acl_file $here/mosquitto/acl
persistence true
persistence_location $dir/broker/data/
CONF

cat >"$dir/hub.toml" <<CONF
[hub]
name = "clinic"
data_dir = "$dir/hub"
port = 8100

[mqtt]
enabled = true
host = "127.0.0.1"
port = $port
username = "hub"
password = "$HUB_MQTT_PASSWORD"
CONF

for station in home clinic2; do
    dport=$([[ $station == home ]] && echo 8001 || echo 8002)
    cat >"$dir/$station.toml" <<CONF
[station]
name = "$station"
data_dir = "$dir/$station"

[dashboard]
port = $dport

[mqtt]
enabled = true
host = "127.0.0.1"
port = $port
CONF
done

if [[ ! -f $dir/hub/hub.db ]]; then
    SPOTTER_HUB_PASSWORD=$THERAPIST_PASSWORD "$repo/.venv/bin/spotter" hub --config "$dir/hub.toml" \
        person add pat --role therapist >/dev/null
fi

cat <<TEXT
A clinic in $dir. Run each in its own terminal:

  $mosquitto -c $dir/broker/mosquitto.conf
  $repo/.venv/bin/spotter hub --config $dir/hub.toml
  (source $dir/secrets.env; SPOTTER_MQTT__PASSWORD=\$HOME_MQTT_PASSWORD $repo/.venv/bin/spotter run --config $dir/home.toml --sim over-hold --stay)
  (source $dir/secrets.env; SPOTTER_MQTT__PASSWORD=\$CLINIC2_MQTT_PASSWORD $repo/.venv/bin/spotter run --config $dir/clinic2.toml --sim hr-high --stay)

Then open http://127.0.0.1:8100/ and log in as pat with the THERAPIST_PASSWORD in $secrets.
The stations stay up after their scenarios (--stay: the user steps off, the sensors stay calm);
stop one with Ctrl-C and the hub raises link.lost for it within 5 s.
TEXT
