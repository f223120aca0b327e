#!/bin/bash
# The browser tests (web/tests/e2e.pw.mjs, @playwright/test) against the real `opaas serve`,
# hermetic: the server runs on 127.0.0.1 against the signed fixture archive of crates/server/examples/fixture_mirror.rs
# (every distro; Debian 12 amd64 has hello, tool-a…f, broken, …), with a fresh data directory.
#
#   bash web/tests/e2e-serve.sh [playwright args, e.g. -g "big job"]   (from anywhere; needs cargo, node, /usr/bin/chromium)
#
# The UI it serves is the web/dist embedded in the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

# shellcheck source=scripts/lib/serve-fixture.sh
. scripts/lib/serve-fixture.sh
# the big jobs of the long-task test: big-app and big2-app pull in 721 packages each, each .deb delayed 30 ms
export FIXTURE_BIG=700 FIXTURE_DELAY_MS=30
serve_fixture e2e-serve
echo "# opaas serve at $url, fixture archive at $mirror"

status=0
(cd web && E2E_DISTRO=debian-12 E2E_ARCH=amd64 E2E_PKG=hello E2E_PKG2=tool-a E2E_PREFIX=hel E2E_TYPO=helo \
  E2E_UNSAT=broken E2E_BIG_PKG="big-app big2-app" E2E_BASE_URL="$url" npx playwright test "$@" </dev/null) || status=$?
if [ "$status" != 0 ]; then
  echo "--- opaas serve stderr (last 40 lines)" >&2
  tail -40 "$work/serve.err" >&2
fi
exit "$status"
