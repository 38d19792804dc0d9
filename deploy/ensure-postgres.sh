#!/usr/bin/env bash
# Make sure PostgreSQL's programs are there for the tests on the PostgreSQL queue: the tests
# use a server already answering on 127.0.0.1:5432 (or TEST_DATABASE_URL), else start a
# throw-away one of their own with these programs (tests/pg_server.py).
# Installs Debian's packages when we may (root with apt-get); otherwise says what to install.
# With CI=true a missing PostgreSQL is an error, so its tests can never be skipped in CI.
set -u
have() {
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || return 1
  command -v pg_dump >/dev/null 2>&1
}
have && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's postgresql..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql postgresql-client >/dev/null
  have && exit 0
fi
echo "PostgreSQL is missing. Install it with:"
echo "    sudo apt-get install postgresql"
echo "(or set TEST_DATABASE_URL to a database the tests may use). Its tests will be skipped."
[ "${CI:-}" = "true" ] && exit 1
exit 0
