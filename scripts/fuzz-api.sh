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

# shellcheck source=scripts/lib/serve-fixture.sh
. scripts/lib/serve-fixture.sh
# per-client limits off, so the fuzzer reaches the handlers instead of 429s
serve_fixture fuzz-api --max-packages 20 --rate-limit 0 --max-queued-per-client 0
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
