#!/bin/bash
# apt-diff.sh - the differential harness: opaas resolve against the real apt (the oracle).
#
# usage: scripts/apt-diff.sh [--no-recommends] [--cmd install|upgrade|dist-upgrade] [--status FILE]
#                            TARGET REQUESTS-FILE [OUT-DIR]
#   TARGET: SUITE-ARCH as in the oracle kit (bookworm-amd64, bookworm-arm64, bullseye-amd64, noble-amd64)
#   REQUESTS-FILE: one request per line (packages separated by spaces); `-` is one empty request
#     (a plain upgrade with --cmd upgrade|dist-upgrade)
#   --status: the baseline (default scripts/oracle/status/TARGET.status; upgrades use *-old.status)
# For every request it runs `opaas resolve` and `apt-get -s install|upgrade|dist-upgrade` (through
# the oracle kit's apt-oracle.sh: a private apt root with the same baseline status file and the same
# mirror), then prints one table row: identical / extra / missing packages (and removals) and the
# time each took. Both refusing counts as identical.
# env: APT_DIFF_JOBS (requests run at once, default 1), OPAAS (binary, default target/release/opaas), ORACLE (default scripts/oracle/apt-oracle.sh),
#      mirrors as for opaas and the oracle (OPAAS_MIRROR_DEBIAN, …, or the host's APT sources).
# exit status: 0 when every request is identical, 1 otherwise.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OPAAS=${OPAAS:-$here/target/release/opaas}
ORACLE=${ORACLE:-$here/scripts/oracle/apt-oracle.sh}
rec=(); recflag=""; cmd=install; status=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-recommends) rec=(--no-recommends); recflag="--no-recommends"; shift;;
    --cmd) cmd=$2; shift 2;;
    --status) status=$2; shift 2;;
    *) break;;
  esac
done
target=$1 reqs=$2 out=${3:-$(mktemp -d)}
suite=${target%-*} arch=${target##*-}
[ -n "$status" ] || status=$(dirname "$ORACLE")/status/$target.status
mode=()
case $cmd in install) ;; upgrade) mode=(--upgrade);; dist-upgrade) mode=(--full-upgrade);; *) echo "unknown --cmd $cmd" >&2; exit 2;; esac
allow_empty=0
[ "$reqs" = - ] && { reqs=$(mktemp); echo "" > "$reqs"; allow_empty=1; }
case $suite in noble) distro=ubuntu-24.04;; jammy) distro=ubuntu-22.04;; bookworm) distro=debian-12;; bullseye) distro=debian-11;; trixie) distro=debian-13;; *) echo "unknown suite $suite" >&2; exit 2;; esac
mkdir -p "$out"
"$ORACLE" --status "$status" "$target" >/dev/null 2>&1 || true        # warm apt's private root
"$OPAAS" update -q -d "$distro" -a "$arch" >/dev/null 2>&1
now() { date +%s%N; }
# shellcheck disable=SC2086  # $line is a list of package names
# one request: writes $out/ID.row (the table row) and $out/ID.ok when both sides agree
one() {
  local id=$1 line=$2 t0 t1 t2 r1 r2 ms1 ms2 res detail extra missing
  t0=$(now); "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" "${rec[@]}" "${mode[@]}" $line 2>"$out/$id.opaas.err" | LC_ALL=C sort > "$out/$id.opaas"; r1=${PIPESTATUS[0]}; t1=$(now)
  "$ORACLE" ${recflag} --cmd "$cmd" --status "$status" "$target" $line 2>"$out/$id.apt.err" | LC_ALL=C sort > "$out/$id.apt"; r2=${PIPESTATUS[0]}; t2=$(now)
  # removals: apt's Remv lines, opaas's "would remove installed package" warnings
  sed -n 's/^Remv \([^ ]*\).*/remove \1/p' "$out/$id.apt.err" | LC_ALL=C sort >> "$out/$id.apt"
  sed -n 's/^warning: apt would remove installed package \([^;]*\);.*/remove \1/p' "$out/$id.opaas.err" | LC_ALL=C sort >> "$out/$id.opaas"
  ms1=$(( (t1-t0)/1000000 )) ms2=$(( (t2-t1)/1000000 ))
  rm -f "$out/$id.ok"
  if [ "$r1" != 0 ] || [ "$r2" != 0 ]; then
    if [ "$r1" != 0 ] && [ "$r2" != 0 ]; then res="both refuse"; : >"$out/$id.ok"; detail=""
    else res="DIFFERENT"; detail="opaas rc=$r1, apt rc=$r2: $(head -c 150 "$out/$id.opaas.err" | tr '\n' ' ')"; fi
  elif cmp -s "$out/$id.opaas" "$out/$id.apt"; then
    res="identical ($(wc -l < "$out/$id.apt") pkgs)"; : >"$out/$id.ok"; detail=""
  else
    extra=$(comm -23 "$out/$id.opaas" "$out/$id.apt" | tr '\n' ' ')
    missing=$(comm -13 "$out/$id.opaas" "$out/$id.apt" | tr '\n' ' ')
    res="DIFFERENT"; detail="extra: ${extra:-none}; missing: ${missing:-none}"
  fi
  printf '| %s | %s | %s | %s | %s | %s |\n' "$line" "$([ -n "$recflag" ] && echo off || echo on)" "$res" "$ms1" "$ms2" "$detail" >"$out/$id.row"
}
# APT_DIFF_JOBS requests at a time (default 1: the timings are then comparable)
jobs=${APT_DIFF_JOBS:-1}
n=0; ids=()
while IFS= read -r line; do
  [ -z "$line" ] && [ $allow_empty = 0 ] && continue; n=$((n+1)); id=$(printf '%03d' $n); ids+=("$id")
  one "$id" "$line" &
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done < "$reqs"
wait
ident=0 total=0
printf '| request | recommends | result | opaas ms | apt ms | detail |\n|---|---|---|---|---|---|\n'
for id in "${ids[@]}"; do
  total=$((total+1)); [ -e "$out/$id.ok" ] && ident=$((ident+1))
  cat "$out/$id.row"
done
echo
echo "$target${recflag:+ $recflag}: $ident/$total identical"
[ "$ident" = "$total" ]
