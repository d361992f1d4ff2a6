#!/usr/bin/env bash
# A clinic group: the bridge section for one site's Mosquitto, which forwards its stations'
# topics to the group's central broker under sites/SITE/ and takes the central hub's commands
# back. Append the output to the site broker's configuration (mosquitto.conf).
#
#   site-bridge.sh SITE CENTRAL_HOST:PORT [CAFILE] < PASSWORD_FILE
#
# The bridge logs in to the central broker as user `site-SITE` (make it there with
# add-user.sh and give it the ACL from central-acl.sh). The password is read from standard
# input (first line), never from the command line. With CAFILE the bridge uses TLS.
# The bridge says on sites/SITE/bridge whether it is up (1, retained) or down (0: its last
# will on the central broker), which the central hub shows. Telemetry stays on the site.
set -euo pipefail
if [[ $# -lt 2 || $# -gt 3 || ${1:-} == -h ]]; then
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
fi
site=$1
address=$2
[[ $site =~ ^[A-Za-z0-9_-]{1,32}$ ]] || { echo "site-bridge: bad site name: $site" >&2; exit 2; }
IFS= read -r password || true
[[ -n $password ]] || { echo "site-bridge: no password on standard input" >&2; exit 2; }
cat <<CONF
# Bridge of site $site to the clinic group's central broker (deploy/mosquitto/site-bridge.sh).
connection central-$site
address $address
remote_clientid bridge-$site
remote_username site-$site
remote_password $password
$( [[ $# -eq 3 ]] && echo "bridge_cafile $3" )
# Keep the session both ways: what the stations send while the link is down is queued here
# and forwarded in order when it is back (QoS 1).
cleansession false
restart_timeout 1 10
keepalive_interval 10
notifications true
notifications_local_only false
notification_topic sites/$site/bridge
topic spotter/v1/+/status out 1 "" sites/$site/
topic spotter/v1/+/state out 1 "" sites/$site/
topic spotter/v1/+/alarms out 1 "" sites/$site/
topic spotter/v1/+/cmd/reply out 1 "" sites/$site/
topic spotter/v1/+/cmd in 1 "" sites/$site/
CONF
