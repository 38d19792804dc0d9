#!/usr/bin/env bash
# Make sure Chromium and ChromeDriver are there for the worker and the browser tests.
# Installs Debian's packages when we may (root with apt-get); otherwise says what to install.
# With CI=true a missing browser is an error, so browser tests can never be skipped in CI.
set -u
chrome="${CHROME_BINARY:-}"; driver="${CHROMEDRIVER_PATH:-}"
have() {
  [ -x "${chrome:-/usr/bin/chromium}" ] || command -v chromium >/dev/null 2>&1 || return 1
  [ -x "${driver:-/usr/bin/chromedriver}" ] || command -v chromedriver >/dev/null 2>&1 || return 1
}
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium and chromium-driver..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  have && exit 0
fi
echo "Chromium or ChromeDriver is missing. Install them with:"
echo "    sudo apt-get install chromium chromium-driver"
echo "(or set CHROME_BINARY and CHROMEDRIVER_PATH). Browser tests will be skipped."
[ "${CI:-}" = "true" ] && exit 1
exit 0
