#!/usr/bin/env bash
# Debian's Chromium for the browser example's test (examples/browser/test): playwright-core
# drives /usr/bin/chromium; nothing downloads a browser of its own. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null; then exit 0; fi
if ! command -v apt-get >/dev/null; then
  echo "install-chromium: no apt-get; install Chromium and set ALIGNJS_CHROMIUM to its binary" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q chromium >/dev/null
}
echo "install-chromium: $(chromium --version)" >&2
