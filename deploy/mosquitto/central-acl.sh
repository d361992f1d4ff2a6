#!/usr/bin/env bash
# A clinic group's central broker: its ACL file is this folder's acl (the hub, stations that
# connect to it directly) plus one user per site bridge, each allowed only its own subtree.
#
#   central-acl.sh SITE... > central-acl
#
# Site SITE's bridge logs in as `site-SITE` (see site-bridge.sh) and may write its stations'
# topics under sites/SITE/spotter/v1/ and its state on sites/SITE/bridge, and read only the
# hub's commands to its stations. The hub reads sites/# and commands through the bridges.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[[ $# -ge 1 ]] || { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
cat "$here/acl"
for site in "$@"; do
    [[ $site =~ ^[A-Za-z0-9_-]{1,32}$ ]] || { echo "central-acl: bad site name: $site" >&2; exit 2; }
    cat <<ACL

# Site $site's bridge.
user site-$site
topic write sites/$site/bridge
topic write sites/$site/spotter/v1/+/status
topic write sites/$site/spotter/v1/+/state
topic write sites/$site/spotter/v1/+/alarms
topic write sites/$site/spotter/v1/+/cmd/reply
topic read sites/$site/spotter/v1/+/cmd
ACL
done
