#!/bin/bash
# The browser tests (web/tests/e2e.mjs) against the real `opaas serve`, hermetic: the server runs
# on 127.0.0.1 against the signed fixture archive of crates/server/examples/fixture_mirror.rs
# (every distro; Debian 12 amd64 has hello, tool-a…f, broken, …), with a fresh data directory.
#
#   bash web/tests/e2e-serve.sh            (from anywhere; needs cargo, node, /usr/bin/chromium)
#
# The UI it serves is the web/dist embedded in the binary.
set -euo pipefail
cd "$(dirname "$0")/../.."

# two builds: with --example, cargo builds only the examples of the selected packages
cargo build -q -p opaas
cargo build -q -p opaas-server --example fixture_mirror
target=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
bin="$target/debug/opaas"
fixture="$target/debug/examples/fixture_mirror"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# the fixture archive prints "<url> <keyring>" and serves while its stdin is open
mkfifo "$work/fixture.in"
"$fixture" <"$work/fixture.in" >"$work/fixture.out" &
pids+=($!)
exec 3>"$work/fixture.in"
for _ in $(seq 600); do [ -s "$work/fixture.out" ] && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
read -r mirror keyring <"$work/fixture.out" || true
[ -n "${mirror:-}" ] || { echo "e2e-serve: the fixture archive did not start" >&2; exit 1; }

: >"$work/config.toml"
OPAAS_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
  --mirror "$mirror" --security-mirror "$mirror" --keyring "$keyring" --config "$work/config.toml" \
  --min-free-bytes 0 --workers 2 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 600); do [ -s "$work/serve.out" ] && break; kill -0 "${pids[1]}" 2>/dev/null || break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out")
[ -n "$url" ] || { echo "e2e-serve: opaas serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "# opaas serve at $url, fixture archive at $mirror"

status=0
E2E_DISTRO=debian-12 E2E_ARCH=amd64 E2E_PKG=hello E2E_PKG2=tool-a E2E_PREFIX=hel E2E_TYPO=helo E2E_UNSAT=broken \
  node web/tests/e2e.mjs "$url" || status=$?
if [ "$status" != 0 ]; then
  echo "--- opaas serve stderr (last 40 lines)" >&2
  tail -40 "$work/serve.err" >&2
fi
exit "$status"
