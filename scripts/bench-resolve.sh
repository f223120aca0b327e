#!/bin/bash
# bench-resolve.sh - warm whole-process resolve speed, OPaaS against apt (issue 9: "warm resolve
# ≥ 50× faster than apt whole-process; an upgrade plan for a 130-package system under 100 ms").
#
# usage: scripts/bench-resolve.sh [TARGET [RUNS]]   TARGET: SUITE-ARCH (default bookworm-amd64),
#                                                    RUNS: runs of each command (default 20)
# Both sides are warm and start from the same status file: `opaas resolve -q --offline` on its
# index cache, and `apt-get -s install` with APT_CONFIG of the oracle kit's private root (its
# pkgcache.bin built by a first run; apt-get alone is timed, not the oracle script around it).
# The runs alternate (opaas, apt, opaas, apt, …) so that a change in the machine's load falls on
# both. Each command is timed as a whole process with `date +%s%N` around it (a `/bin/true`
# measured the same way is printed: the harness's own share of every number).
# Prints a markdown table: best and median of RUNS for each side, and best/best and median/median
# ratios; then the upgrade and full-upgrade plans of the old-status file (opaas only: apt's
# `-s upgrade` is printed beside them for scale).
# env: OPAAS (default target/release/opaas), OPAAS_CACHE_DIR, ORACLE_WORK (the oracle's roots),
#      mirrors as for opaas and the oracle kit.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
target=${1:-bookworm-amd64} runs=${2:-20}
suite=${target%-*} arch=${target##*-}
case $suite in noble) distro=ubuntu-24.04;; jammy) distro=ubuntu-22.04;; bookworm) distro=debian-12;;
  bullseye) distro=debian-11;; trixie) distro=debian-13;; *) echo "unknown suite $suite" >&2; exit 2;; esac
OPAAS=${OPAAS:-$top/target/release/opaas}
[ -x "$OPAAS" ] || { echo "no $OPAAS (cargo build --release -p opaas)" >&2; exit 2; }
export OPAAS
oracle=$top/scripts/oracle/apt-oracle.sh
status=$top/scripts/oracle/status/$target.status
old=$top/scripts/oracle/status/$target-old.status
work=${ORACLE_WORK:-${TMPDIR:-/tmp}/opaas-oracle}
conf=$work/roots/$target/apt.conf

declare -A REQ=([small]="nginx htop jq" [large]="docker.io openssh-server vim nginx htop jq curl git python3" [huge]="libreoffice")

now() { date +%s%N; }
# ms CMD...: wall milliseconds (one decimal) of one run, output discarded
ms() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || true; t1=$(now); echo $(( (t1 - t0) / 100000 )); }
# stats: "best median" of the tenths-of-ms values on stdin
stats() { sort -n | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.1f %.1f\n", v[1] / 10, m / 10 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b / a }'; }

# warm both sides: opaas's tables, apt's pkgcache.bin for this status
"$OPAAS" update -q -d "$distro" -a "$arch" >/dev/null 2>&1 || true
"$oracle" --status "$status" "$target" hello >/dev/null 2>&1 || { echo "apt-oracle.sh failed for $target" >&2; exit 1; }
[ -r "$conf" ] || { echo "no oracle root at $conf" >&2; exit 1; }
aptget() { APT_CONFIG=$conf DEBIAN_FRONTEND=noninteractive apt-get -s -q "$@"; }

echo "# $target, $runs runs each, alternating; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start; $("$OPAAS" --version), apt $(apt-get --version | head -1 | cut -d' ' -f2)"
echo "# harness: /bin/true $(for _ in $(seq "$runs"); do ms /bin/true; done | stats | cut -d' ' -f1) ms best"
echo
echo "| request | packages | opaas best / median | apt best / median | best/best | median/median |"
echo "|---|---|---|---|---|---|"
for size in small large huge; do
  req=${REQ[$size]}
  n=$("$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" $req 2>/dev/null | wc -l)
  aptget install $req >/dev/null 2>&1 || true      # its pkgcache.bin for this status
  : >"$work/o.ms"; : >"$work/a.ms"
  for _ in $(seq "$runs"); do
    ms "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" $req >>"$work/o.ms"
    ms aptget install $req >>"$work/a.ms"
  done
  read -r ob om < <(stats <"$work/o.ms")
  read -r ab am < <(stats <"$work/a.ms")
  echo "| $size: \`$req\` | $n | $ob / $om ms | $ab / $am ms | $(ratio "$ob" "$ab")× | $(ratio "$om" "$am")× |"
done
if [ -r "$old" ]; then
  echo
  echo "| plan of the old system ($(grep -c '^Package:' "$old") packages) | changes | opaas best / median | apt best / median |"
  echo "|---|---|---|---|"
  for mode in upgrade full-upgrade; do
    cmd=upgrade; [ $mode = full-upgrade ] && cmd=dist-upgrade
    n=$("$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$old" --$mode 2>/dev/null | wc -l)
    "$oracle" --cmd $cmd --status "$old" "$target" >/dev/null 2>&1 || true
    : >"$work/o.ms"; : >"$work/a.ms"
    for _ in $(seq "$runs"); do
      ms "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$old" --$mode >>"$work/o.ms"
      ms aptget $cmd >>"$work/a.ms"
    done
    read -r ob om < <(stats <"$work/o.ms")
    read -r ab am < <(stats <"$work/a.ms")
    echo "| \`--$mode\` (apt-get $cmd) | $n | $ob / $om ms | $ab / $am ms |"
  done
  "$oracle" --status "$status" "$target" >/dev/null 2>&1 || true   # the root's status back
fi
