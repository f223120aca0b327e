#!/bin/bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis (PyPI): every operation,
# positive and negative data, bounded examples; fails on any 5xx (`not_a_server_error`).
#
#   scripts/fuzz-api.sh                    # MAX_EXAMPLES=25 per operation
#   MAX_EXAMPLES=100 scripts/fuzz-api.sh
#
# The per-client limits are off (the fuzzer would mostly meet 429; scripts/attack.sh tests them).
# Hermetic: `opaas serve` runs on 127.0.0.1 against a signed fixture archive of every distro of
# the catalog (crates/server/examples/fixture_mirror.rs), with a fresh data directory.
# schemathesis is installed into a venv under ${OPAAS_FUZZ_VENV:-~/.cache/opaas-fuzz/venv}.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES=${MAX_EXAMPLES:-25}
VENV=${OPAAS_FUZZ_VENV:-$HOME/.cache/opaas-fuzz/venv}
t0=$(date +%s)

if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis </dev/null
fi

# two builds: with --example, cargo builds only the examples of the selected packages
cargo build -q -p opaas
cargo build -q -p opaas-server --example fixture_mirror
bin=target/debug/opaas
fixture=target/debug/examples/fixture_mirror

work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# the fixture archive: its first line is "<url> <keyring>"; it serves while its stdin is open
mkfifo "$work/fixture.in"
"$fixture" <"$work/fixture.in" >"$work/fixture.out" &
pids+=($!)
exec 3>"$work/fixture.in"
for _ in $(seq 600); do [ -s "$work/fixture.out" ] && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
read -r mirror keyring <"$work/fixture.out" || true
[ -n "$mirror" ] || { echo "fuzz-api: the fixture archive did not start" >&2; exit 1; }

: >"$work/config.toml"
OPAAS_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
  --mirror "$mirror" --security-mirror "$mirror" --keyring "$keyring" --config "$work/config.toml" \
  --min-free-bytes 0 --max-packages 20 --workers 2 \
  --rate-limit 0 --max-queued-per-client 0 >"$work/serve.out" 2>"$work/serve.err" &
pids+=($!)
for _ in $(seq 600); do [ -s "$work/serve.out" ] && break; kill -0 "${pids[1]}" 2>/dev/null || break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/serve.out")
[ -n "$url" ] || { echo "fuzz-api: opaas serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
echo "fuzz-api: opaas serve at $url, fixture archive at $mirror, $MAX_EXAMPLES examples per operation"

status=0
# run from the scratch directory: schemathesis keeps state in ./.schemathesis
(cd "$work" && "$VENV/bin/schemathesis" run "$url/api/openapi.json" \
  --checks not_a_server_error \
  --max-examples "$MAX_EXAMPLES" \
  --phases examples,coverage,fuzzing,stateful \
  --workers 1 \
  --request-timeout 60 \
  --generation-database none \
  --suppress-health-check all \
  --no-color </dev/null) || status=$?

if grep -q " 5[0-9][0-9] " "$work/serve.err" 2>/dev/null; then
  echo "fuzz-api: the service logged server errors:" >&2
  grep " 5[0-9][0-9] " "$work/serve.err" | head -20 >&2
fi
echo "fuzz-api: finished in $(( $(date +%s) - t0 )) s (exit $status)"
exit $status
