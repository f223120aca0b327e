# shellcheck shell=bash
# Sourced by scripts/fuzz-api.sh and web/tests/e2e-serve.sh: builds `opaas` and the fixture
# archive (crates/server/examples/fixture_mirror.rs: a signed archive of every distro of the
# catalog on 127.0.0.1), starts both with a fresh data directory, and stops them on exit.
#
#   . scripts/lib/serve-fixture.sh        (from the repository root)
#   serve_fixture NAME [opaas serve flags…]
#
# Sets: work (scratch directory, removed on exit), mirror, keyring, url (of `opaas serve`);
# its stderr is in "$work/serve.err". NAME prefixes the error messages.

serve_fixture() {
  local name=$1
  shift
  # two builds: with --example, cargo builds only the examples of the selected packages
  cargo build -q -p opaas
  cargo build -q -p opaas-server --example fixture_mirror
  local target
  target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  local bin="$target/debug/opaas" fixture="$target/debug/examples/fixture_mirror"

  work=$(mktemp -d)
  _serve_fixture_pids=()
  trap _serve_fixture_cleanup EXIT

  # the fixture archive: its first line is "<url> <keyring>"; it serves while its stdin is open
  mkfifo "$work/fixture.in"
  "$fixture" <"$work/fixture.in" >"$work/fixture.out" &
  _serve_fixture_pids+=($!)
  exec 3>"$work/fixture.in"
  _serve_fixture_wait "$work/fixture.out" "${_serve_fixture_pids[0]}"
  read -r mirror keyring <"$work/fixture.out" || true
  [ -n "${mirror:-}" ] || { echo "$name: the fixture archive did not start" >&2; exit 1; }

  : >"$work/config.toml"
  OPAAS_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$work/data" \
    --mirror "$mirror" --security-mirror "$mirror" --keyring "$keyring" --config "$work/config.toml" \
    --min-free-bytes 0 --workers 2 "$@" >"$work/serve.out" 2>"$work/serve.err" &
  _serve_fixture_pids+=($!)
  _serve_fixture_wait "$work/serve.out" "${_serve_fixture_pids[1]}"
  url=$(sed -n 's/^listening on //p' "$work/serve.out")
  [ -n "$url" ] || { echo "$name: opaas serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
}

# waits up to 60 s for a first line in $1 while process $2 lives
_serve_fixture_wait() {
  for _ in $(seq 600); do
    [ -s "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 0
    sleep 0.1
  done
}

# shellcheck disable=SC2317  # called by the trap
_serve_fixture_cleanup() {
  for p in "${_serve_fixture_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
