#!/usr/bin/env bash
# DynamoDB Local needs Java 17+. Install a headless JRE from Debian's packages when it is missing.
set -euo pipefail
major() { java -version 2>&1 | sed -nE 's/.*version "([0-9]+).*/\1/p' | head -1; }
if command -v java >/dev/null 2>&1 && [ "$(major)" -ge 17 ] 2>/dev/null; then
  exit 0
fi
echo "Java 17+ not found: installing a headless JRE with apt-get" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless \
  || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-21-jre-headless \
  || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless
java -version
