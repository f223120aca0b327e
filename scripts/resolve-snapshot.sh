#!/bin/bash
# resolve-snapshot.sh - record every answer `opaas resolve` gives for a request list, to prove that a
# refactor changed none of them.
#
# usage: scripts/resolve-snapshot.sh OUT-DIR [REQUESTS-FILE]
#   then: diff -r OLD-OUT-DIR NEW-OUT-DIR   (no output = byte-identical answers)
# For every request line (packages separated by spaces) and every target (TARGETS, default
# "debian-12:amd64 debian-12:arm64 debian-11:amd64"), recommends on and off, it stores
#   NN-TARGET-rec|norec.plain    stdout, then stderr, then the exit status of `opaas resolve -q`
#   NN-TARGET-rec|norec.explain  the same with --explain (the explanation is on stderr)
#   NN-TARGET-rec|norec.json     the same with --json
# A few error cases (unknown package, virtual package, bad version, unsatisfiable, …) follow the
# request file as E1, E2, ….
# The indices are fetched once per target (`opaas update`), then every resolve runs --offline so that
# two snapshots taken hours apart read the same indices; keep CACHE the same between them.
# env: OPAAS (binary, default target/debug/opaas), CACHE (default /work/cache-A),
#      TARGETS, mirrors as for opaas (OPAAS_MIRROR_DEBIAN, …, or the host's APT sources).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OPAAS=${OPAAS:-$here/target/debug/opaas}
CACHE=${CACHE:-/work/cache-A}
TARGETS=${TARGETS:-debian-12:amd64 debian-12:arm64 debian-11:amd64}
out=${1:?usage: resolve-snapshot.sh OUT-DIR [REQUESTS-FILE]}
reqs=${2:-$here/scripts/oracle/requests-public.txt}
mkdir -p "$out"

errors=(
  "no-such-package-zz"        # unknown package
  "ngin"                      # unknown, with a suggestion
  "mail-transport-agent"      # virtual package, several providers
  "www-browser"               # virtual package, several providers
  "nginx=0.0.0-nope"          # unknown version
  "nginx/no-such-suite"       # unknown release
  "nginx:no-such-arch"        # unknown architecture
  "postfix exim4-daemon-light" # two packages that conflict
  "nginx nginx=0.0.0-nope"    # a good entry then a bad one (the index of the bad one)
)

run() { # FILE ARGS...
  local f=$1; shift
  "$OPAAS" resolve -q --offline --cache-dir "$CACHE" "$@" >"$f" 2>"$f.err"
  local rc=$?
  { echo "--- stderr"; cat "$f.err"; echo "--- exit $rc"; } >>"$f"
  rm -f "$f.err"
}

n=0
for t in $TARGETS; do
  d=${t%%:*} a=${t##*:}
  "$OPAAS" update -q --cache-dir "$CACHE" -d "$d" -a "$a" >/dev/null 2>&1 || echo "warning: update $t failed" >&2
done
lines=()
while IFS= read -r line; do
  [ -z "$line" ] && continue
  case $line in \#*) continue ;; esac
  lines+=("$line")
done <"$reqs"
i=0
for line in "${lines[@]}" "${errors[@]}"; do
  i=$((i + 1))
  if [ "$i" -le "${#lines[@]}" ]; then id=$(printf '%02d' "$i"); else id=E$((i - ${#lines[@]})); fi
  read -ra pkgs <<<"$line"
  for t in $TARGETS; do
    d=${t%%:*} a=${t##*:}
    for rec in rec norec; do
      flags=(-d "$d" -a "$a")
      [ $rec = norec ] && flags+=(--no-recommends)
      base="$out/$id-$d-$a-$rec"
      run "$base.plain" "${flags[@]}" "${pkgs[@]}"
      run "$base.explain" "${flags[@]}" --explain "${pkgs[@]}"
      run "$base.json" "${flags[@]}" --json "${pkgs[@]}"
      n=$((n + 1))
    done
  done
done
echo "$n request×target×recommends cases ($i requests) in $out" >&2
