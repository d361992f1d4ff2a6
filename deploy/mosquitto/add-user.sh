#!/usr/bin/env bash
# Adds a user to the clinic broker's password file, or changes its password (mosquitto_passwd).
#
#   add-user.sh PASSWD_FILE USER              asks for the password (twice)
#   add-user.sh PASSWD_FILE USER < FILE       reads it from standard input (first line)
#   add-user.sh --generate PASSWD_FILE USER   makes a random password and prints it once
#   add-user.sh --quiet ...                   no reminder to reload the broker (none runs yet)
#
# USER is a station's name (its [station] name in spotter.toml), or `hub`, or `homeassistant`:
# the ACL (acl in this folder) gives each its topics by that name. The file is created (0600)
# if missing. The password never appears on a command line (not visible in ps). Afterwards,
# reload the broker: `docker compose kill -s HUP mosquitto` or `systemctl reload mosquitto`.
set -euo pipefail

die() {
    echo "add-user: $*" >&2
    exit 2
}

GENERATE=0
QUIET=0
while [[ ${1:-} == --generate || ${1:-} == --quiet ]]; do
    [[ $1 == --generate ]] && GENERATE=1
    [[ $1 == --quiet ]] && QUIET=1
    shift
done
if [[ ${1:-} == -h || ${1:-} == --help || $# -ne 2 ]]; then
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    [[ $# -eq 2 ]] || exit 2
    exit 0
fi
FILE=$1
USER_NAME=$2
[[ $USER_NAME =~ ^[A-Za-z0-9_-]+$ ]] ||
    die "user names are station names: letters, digits, _ and - only (got '$USER_NAME')"
command -v mosquitto_passwd >/dev/null || die "mosquitto_passwd not found (apt-get install mosquitto)"

create=()
if [[ ! -f $FILE ]]; then
    create=(-c)
    (umask 077 && : >"$FILE")
fi

if ((GENERATE)); then
    password=$(openssl rand -base64 24 | tr -d '/+=' | cut -c1-24)
elif [[ -t 0 ]]; then
    password=""  # mosquitto_passwd asks on the terminal
else
    IFS= read -r password || true
    [[ -n $password ]] || die "no password on standard input"
fi

if [[ -n $password ]]; then
    printf '%s\n%s\n' "$password" "$password" | mosquitto_passwd "${create[@]}" "$FILE" "$USER_NAME" >/dev/null
else
    mosquitto_passwd "${create[@]}" "$FILE" "$USER_NAME"
fi
chmod 600 "$FILE"
if ((GENERATE)); then
    echo "$USER_NAME: $password"
    echo "(shown once: put it in that station's [mqtt] password, or SPOTTER_MQTT__PASSWORD)" >&2
fi
((QUIET)) || echo "add-user: $USER_NAME is in $FILE; reload the broker to apply" >&2
