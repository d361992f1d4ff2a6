#!/usr/bin/env bash
# Installs Spotter as a systemd service on Raspberry Pi OS (Debian bookworm), from the checkout
# this script lives in. Idempotent: run it again to update (the configuration is kept).
#
#   sudo deploy/install-pi.sh            install or update, start the service, run spotter doctor
#   deploy/install-pi.sh --dry-run       print the commands instead (changes nothing; no root)
#
# See docs/raspberry-pi.md.
set -euo pipefail

PREFIX=/opt/spotter
VENV=$PREFIX/.venv
CONF_DIR=/etc/spotter
CONF=$CONF_DIR/spotter.toml
DATA_DIR=/var/lib/spotter
UNIT=spotter.service
UNIT_DIR=/etc/systemd/system
SERVICE_USER=spotter
PACKAGES=(python3-venv bluez espeak-ng alsa-utils)
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)

DRY_RUN=0
for arg in "$@"; do
    case $arg in
        --dry-run) DRY_RUN=1 ;;
        -h | --help)
            sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "install-pi: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { printf '\n== %s\n' "$*"; }

# Every change goes through run: in a dry run it is printed (shell-quoted), not done.
run() {
    if [ "$DRY_RUN" = 1 ]; then
        local arg line="+"
        for arg in "$@"; do
            if [[ $arg =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
                line+=" $arg"
            else
                line+=" $(printf '%q' "$arg")"
            fi
        done
        printf '%s\n' "$line"
    else
        "$@"
    fi
}

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install-pi: run as root: sudo $0" >&2
    exit 1
fi
if [ ! -f "$SRC/pyproject.toml" ] || [ ! -f "$SRC/constraints.txt" ]; then
    echo "install-pi: $SRC is not a Spotter checkout (no pyproject.toml / constraints.txt)" >&2
    exit 1
fi
if [ "$DRY_RUN" = 1 ]; then
    echo "install-pi: dry run: printing the commands, changing nothing"
fi

say "system packages"
run apt-get update
run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"

say "service user $SERVICE_USER (groups bluetooth, audio)"
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    run usermod --append --groups bluetooth,audio "$SERVICE_USER"
else
    run useradd --system --user-group --groups bluetooth,audio --home-dir "$DATA_DIR" \
        --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
fi

say "the project in $PREFIX"
if [ "$SRC" = "$PREFIX" ]; then
    echo "install-pi: running from $PREFIX itself: nothing to copy"
else
    run install -d -m 0755 "$PREFIX"
    # Replace the old copy (not the venv), so files deleted upstream do not linger.
    run find "$PREFIX" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
    run tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./data \
        --exclude=./node_modules --exclude='*.egg-info' --exclude=__pycache__ \
        --exclude=./build -cf "$PREFIX/.source.tar" .
    run tar -C "$PREFIX" --no-same-owner -xf "$PREFIX/.source.tar"
    run rm -f "$PREFIX/.source.tar"
fi

say "Python environment $VENV (pinned by constraints.txt)"
if [ ! -x "$VENV/bin/python" ]; then
    run python3 -m venv "$VENV"
fi
run "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$PREFIX/constraints.txt" "$PREFIX"

say "configuration $CONF"
run install -d -m 0750 -o root -g "$SERVICE_USER" "$CONF_DIR"
if [ -e "$CONF" ]; then
    echo "install-pi: keeping the existing $CONF"
else
    run "$VENV/bin/spotter" init --path "$CONF"
    # [station] data_dir = the service's state folder, in the file spotter init just wrote.
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ set [station] data_dir = \"$DATA_DIR\" in $CONF"
    else
        "$VENV/bin/python" - "$CONF" "$DATA_DIR" <<'PY'
import re
import sys
import tomllib
from pathlib import Path

conf, data_dir = Path(sys.argv[1]), sys.argv[2]
text = conf.read_text(encoding="utf-8")
line = f'data_dir = "{data_dir}"'
header = re.compile(r"^\[station\]\s*(#.*)?$", re.MULTILINE)
setting = re.compile(r"^data_dir\s*=.*$", re.MULTILINE)
station = header.search(text)
if station is None:
    text = text.rstrip("\n") + f"\n\n[station]\n{line}\n"
else:
    end = re.compile(r"^\[", re.MULTILINE).search(text, station.end())
    body = text[station.end() : end.start() if end else len(text)]
    if setting.search(body):
        body = setting.sub(line, body, count=1)
    else:
        body = "\n" + line + body
    text = text[: station.end()] + body + (text[end.start() :] if end else "")
got = tomllib.loads(text).get("station", {}).get("data_dir")
if got != data_dir:
    sys.exit(f"install-pi: could not set [station] data_dir in {conf} (got {got!r})")
conf.write_text(text, encoding="utf-8")
PY
    fi
fi
run chown "root:$SERVICE_USER" "$CONF"
run chmod 0640 "$CONF"

say "data folder $DATA_DIR"
run install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$DATA_DIR"

say "systemd unit $UNIT"
was_active=0
systemctl is-active --quiet "$UNIT" 2>/dev/null && was_active=1
run install -m 0644 "$SRC/deploy/systemd/$UNIT" "$UNIT_DIR/$UNIT"
run systemctl daemon-reload
run systemctl enable --now bluetooth.service
run systemctl enable --now "$UNIT"
if [ "$was_active" = 1 ]; then
    run systemctl restart "$UNIT" # an update: the running service still has the old code
fi

say "spotter doctor (as $SERVICE_USER)"
if run runuser -u "$SERVICE_USER" -- env "SPOTTER_CONFIG=$CONF" "$VENV/bin/spotter" doctor; then
    if [ "$DRY_RUN" = 1 ]; then
        echo "install-pi: dry run finished: nothing was changed"
        exit 0
    fi
    echo
    echo "install-pi: done. Next: set your sensors' addresses in $CONF (spotter scan),"
    echo "then: sudo systemctl restart $UNIT; journalctl -u $UNIT -f"
else
    echo
    echo "install-pi: installed, but spotter doctor found problems (above): fix them, then" >&2
    echo "  sudo runuser -u $SERVICE_USER -- env SPOTTER_CONFIG=$CONF $VENV/bin/spotter doctor" >&2
    exit 1
fi
