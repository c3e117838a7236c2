#!/usr/bin/env bash
# Pages are tested in a real headless browser: Swagger UI at /docs (chromium --dump-dom) and the
# Settings → API Keys console (playwright-core driving this same chromium; Playwright's own
# browser download is not used). Install Debian's Chromium when it is missing, as
# ensure-java.sh does for Java.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
echo "Chromium not found: installing it with apt-get" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
chromium --version
