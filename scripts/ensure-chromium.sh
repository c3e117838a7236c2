#!/usr/bin/env bash
# The browser tests drive Debian's chromium through playwright-core (Playwright's own browser
# download cannot run here). Install it with apt-get when it is missing, as ensure-java.sh does for Java.
set -euo pipefail
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
echo "chromium not found: installing Debian's chromium with apt-get" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
"$CHROMIUM" --version
