#!/bin/bash
# bench.sh - OPaaS side by side with apt on the same mirror, in one run (issue 12); regenerates the
# section of docs/BENCHMARKS.md between `<!-- bench.sh:begin -->` and `<!-- bench.sh:end -->`.
#
# usage: scripts/bench.sh [TARGET [RUNS]]   TARGET: SUITE-ARCH (default bookworm-amd64); RUNS: best of
#                                           RUNS for each number (default 1)
# Measures, with /usr/bin/time (wall seconds, peak RSS), for a small (nginx htop jq), a large
# (docker.io openssh-server vim nginx htop jq curl git python3) and a huge (libreoffice) request,
# both tools starting from the oracle kit's minbase status file of the target:
#   1. cold index update: `opaas update` into an empty cache vs `apt-get update` in a fresh private
#      root (scripts/oracle/apt-oracle.sh --update: the same mirrors, pockets and components)
#   2. warm whole-process resolve vs `apt-get -s install` with a warm pkgcache.bin
#   3. cold download + bundle (.tar.gz; empty .deb cache, warm indices) vs apt's
#      `install --download-only` into an empty directory (apt-oracle.sh --download), the two
#      alternating run by run
#   4. warm rebuild: the same build into a new directory (everything in the store: resolve + pack
#      again; the .debs cached, as the cold build left them), alternating with a plain copy of its
#      .tar.gz (`dd conv=fsync`, the source read into the page cache first); apt's download-only
#      again into its now full directory (nothing to fetch); and the identical build again into
#      the same directory (the verified tarball is reused)
#   5. packing the same bytes: .tar.gz (from step 4) vs .tar.zst vs the plain copy
#      (the pack times are the build's own "pack N s", from the start of writing to the end);
#      last, the warm rebuild with its .debs on the disk only (after a reboot, or evicted: their
#      pages dropped first), which leaves them uncached
# env: BENCH_SIZES (default "small large huge"), BENCH_WRITE=0 (print only, leave the docs alone),
#      OPAAS (default target/release/opaas), ORACLE (default scripts/oracle/apt-oracle.sh), mirrors
#      as for opaas and the oracle (flag > env > config > host APT sources).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OPAAS=${OPAAS:-$here/target/release/opaas}
ORACLE=${ORACLE:-$here/scripts/oracle/apt-oracle.sh}
target=${1:-bookworm-amd64} runs=${2:-1}
sizes=${BENCH_SIZES:-small large huge}
suite=${target%-*} arch=${target##*-}
case $suite in noble) distro=ubuntu-24.04;; jammy) distro=ubuntu-22.04;; bookworm) distro=debian-12;; bullseye) distro=debian-11;; trixie) distro=debian-13;; *) echo "bench: unknown suite $suite" >&2; exit 2;; esac
[ -x "$OPAAS" ] || { echo "bench: no $OPAAS (cargo build --release -p opaas)" >&2; exit 2; }
status=$(dirname "$ORACLE")/status/$target.status
declare -A REQ=(
  [small]="nginx htop jq"
  [large]="docker.io openssh-server vim nginx htop jq curl git python3"
  [huge]="libreoffice"
)
work=$(mktemp -d "${TMPDIR:-/tmp}/opaas-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export OPAAS_CACHE_DIR=$work/cache ORACLE_WORK=$work/oracle
declare -A W M   # wall seconds, peak RSS MB, by label
declare -A N GZ ZST DEBS PGZ PZST PDISK DL MCOLD MPACK   # per request size: packages, sizes, phase
                                                 # times, medians of the pairs' ratios
# run LABEL SETUP CMD...: RUNS times (SETUP, a function name or :, before each), keeps the
# fastest wall time and its RSS, and its stderr in $work/LABEL.err
run() {
  local label=$1 setup=$2 s kb a b
  shift 2
  for _ in $(seq "$runs"); do
    "$setup"
    a=$EPOCHREALTIME
    if ! /usr/bin/time -f "%M" -o "$work/t" "$@" >"$work/out.txt" 2>"$work/err.txt"; then
      echo "bench: FAILED: $label: $*" >&2
      tail -5 "$work/err.txt" >&2
      return 1
    fi
    b=$EPOCHREALTIME
    s=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b - a }')
    kb=$(tail -1 "$work/t")
    LAST=$s
    cp "$work/err.txt" "$work/$label.last.err"
    if [ -z "${W[$label]:-}" ] || awk -v a="$s" -v b="${W[$label]}" 'BEGIN { exit !(a < b) }'; then
      W[$label]=$s M[$label]=$((kb / 1024))
      cp "$work/err.txt" "$work/$label.err"
    fi
    # every run, not only the best so far
    echo "  $label: $s s, $((kb / 1024)) MB (best ${W[$label]} s)" >&2
  done
}
# the build's own phase times: "pack 0.65 s" from its summary line (of the best run; of the
# latest with LABEL.last)
phase() { sed -n "s/.*[(,] $2 \([0-9.]*\) s[,)].*/\1/p" "$work/$1.err" | tail -1; }
# the median of its arguments
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
no_cache() { rm -rf "$work/cache"; }
no_oracle() { rm -rf "$work/oracle"; }
no_debs() { rm -rf "$work/cache/debs-v1" "$work/out"; }
no_out() { rm -rf "$work/out2"; }
# the store's .debs not in the page cache (`iflag=nocache count=0` drops a file's pages)
debs_on_disk() {
  no_out
  local f
  for f in "$work"/cache/debs-v1/*/*.deb; do dd if="$f" iflag=nocache count=0 status=none; done
}
no_zst() { rm -rf "$work/zst"; }
no_apt_debs() { rm -rf "$work/debs"; }
no_copy() { rm -f "$work/copy"; }

t0=$(date +%s)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench: $target ($distro $arch), $(nproc) cores, best of $runs, $(date -u '+%Y-%m-%d %H:%M UTC'), load $load0" >&2
echo "1. cold index update" >&2
run opaas-update no_cache "$OPAAS" update -q -d "$distro" -a "$arch"
run apt-update no_oracle "$ORACLE" --update "$target"
for size in $sizes; do
  # shellcheck disable=SC2206
  req=(${REQ[$size]})
  echo "$size: ${req[*]}" >&2
  echo "2. warm resolve" >&2
  "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" "${req[@]}" >/dev/null
  "$ORACLE" "$target" "${req[@]}" >/dev/null 2>&1   # builds pkgcache.bin
  run "opaas-resolve-$size" : "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" "${req[@]}"
  run "apt-resolve-$size" : "$ORACLE" "$target" "${req[@]}"
  # steps 3 and 4 alternate the two sides, one run each at a time, so that a slow minute of
  # this shared machine or of the mirror falls on both; besides the best of each side, the
  # median of the pairs' ratios is reported
  echo "3. cold download + bundle (alternating)" >&2
  build=("$OPAAS" build --offline -d "$distro" -a "$arch" --baseline "$status")
  pairs=()
  for _ in $(seq "$runs"); do
    runs_all=$runs runs=1
    run "opaas-cold-$size" no_debs "${build[@]}" -o "$work/out" "${req[@]}"
    a=$LAST
    run "apt-cold-$size" no_apt_debs "$ORACLE" --download "$work/debs" "$target" "${req[@]}"
    runs=$runs_all
    pairs+=("$(ratio "$a" "$LAST")")
  done
  MCOLD[$size]=$(median "${pairs[@]}")
  echo "4. warm rebuild, and packing against a plain copy (alternating)" >&2
  pairs=()
  for _ in $(seq "$runs"); do
    runs_all=$runs runs=1
    run "opaas-warm-$size" no_out "${build[@]}" -o "$work/out2" "${req[@]}"
    p=$(phase "opaas-warm-$size.last" pack)
    gz=$(ls "$work"/out2/offline_pkg_*.tar.gz)
    # the tarball was written with O_DIRECT: read it once so that the copy reads its input from
    # the page cache, as the build just did
    cat "$gz" >/dev/null
    run "copy-$size" no_copy dd if="$gz" of="$work/copy" bs=1M conv=fsync status=none
    runs=$runs_all
    pairs+=("$(ratio "$p" "$LAST")")
  done
  MPACK[$size]=$(median "${pairs[@]}")
  run "apt-warm-$size" : "$ORACLE" --download "$work/debs" "$target" "${req[@]}"
  run "opaas-reuse-$size" : "${build[@]}" -o "$work/out2" "${req[@]}"
  grep -q '^reusing ' "$work/opaas-reuse-$size.err" || { echo "bench: the identical build did not reuse" >&2; exit 1; }
  echo "5. packing" >&2
  run "opaas-zst-$size" no_zst "${build[@]}" --format tar.zst -o "$work/zst" "${req[@]}"
  # last: it leaves the .debs uncached (a rebuild gives back what it read from the disk)
  run "opaas-disk-$size" debs_on_disk "${build[@]}" -o "$work/out2" "${req[@]}"
  gz=$(ls "$work"/out2/offline_pkg_*.tar.gz)
  N[$size]=$(sed -n 's/^\([0-9]*\) packages (.*/\1/p' "$work/opaas-cold-$size.err" | tail -1)
  GZ[$size]=$(stat -c %s "$gz")
  ZST[$size]=$(stat -c %s "$work"/zst/offline_pkg_*.tar.zst)
  DEBS[$size]=$(du -cb "$work"/debs/*.deb | tail -1 | cut -f1)
  PGZ[$size]=$(phase "opaas-warm-$size" pack)
  PDISK[$size]=$(phase "opaas-disk-$size" pack)
  PZST[$size]=$(phase "opaas-zst-$size" pack)
  DL[$size]=$(phase "opaas-cold-$size" download)
  rm -rf "$work/out" "$work/out2" "$work/zst" "$work/copy" "$work/debs"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
took=$(($(date +%s) - t0))

# the section of docs/BENCHMARKS.md
sec=$work/section.md
{
  echo "Generated by \`scripts/bench.sh $target $runs\` on $(date -u +%Y-%m-%d) ($(nproc) cores; load average"
  echo "$load0 at the start, $load1 at the end; the machine is shared) in $took s: $("$OPAAS" --version 2>/dev/null | head -1) ($(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')),"
  echo "release build, and apt $(apt-get --version | head -1 | cut -d' ' -f2) in a private root (\`scripts/oracle/apt-oracle.sh\`), on the same"
  echo "mirror, both from the oracle kit's minbase status file. Wall seconds (best of $runs) and peak RSS;"
  echo "apt's numbers include the oracle script (about 0.1 s: it asks \`opaas mirrors\` for the sources)."
  echo
  echo "| request | step | OPaaS | apt | OPaaS / apt |"
  echo "|---|---|---|---|---|"
  echo "| (indices) | cold index update | ${W[opaas-update]} s, ${M[opaas-update]} MB | ${W[apt-update]} s, ${M[apt-update]} MB (\`apt-get update\`) | $(ratio "${W[opaas-update]}" "${W[apt-update]}") |"
  for size in $sizes; do
    what="$size: ${N[$size]} packages, $(mib "${DEBS[$size]}")"
    echo "| $what | warm resolve (whole process) | ${W[opaas-resolve-$size]} s, ${M[opaas-resolve-$size]} MB | ${W[apt-resolve-$size]} s, ${M[apt-resolve-$size]} MB (\`-s install\`) | $(ratio "${W[opaas-resolve-$size]}" "${W[apt-resolve-$size]}") |"
    echo "| $what | cold download + bundle (.tar.gz) | ${W[opaas-cold-$size]} s, ${M[opaas-cold-$size]} MB (download ${DL[$size]} s) | ${W[apt-cold-$size]} s, ${M[apt-cold-$size]} MB (download only) | $(ratio "${W[opaas-cold-$size]}" "${W[apt-cold-$size]}") (pairs: median ${MCOLD[$size]}) |"
    echo "| $what | warm rebuild (resolve + pack again; .debs in the page cache) | ${W[opaas-warm-$size]} s, ${M[opaas-warm-$size]} MB | ${W[apt-warm-$size]} s (download only, all present) | $(ratio "${W[opaas-warm-$size]}" "${W[apt-warm-$size]}") |"
    echo "| $what | warm rebuild, .debs read from the disk (pack ${PDISK[$size]} s) | ${W[opaas-disk-$size]} s, ${M[opaas-disk-$size]} MB | | |"
    echo "| $what | identical build again (reuse, verified) | ${W[opaas-reuse-$size]} s, ${M[opaas-reuse-$size]} MB | | |"
  done
  echo
  echo "Packing the same bytes (\`pack\`: the build's own phase time, from the first byte of the tarball to"
  echo "its rename; the copy is \`dd bs=1M conv=fsync\` of the finished .tar.gz; both read their input from"
  echo "the page cache):"
  echo
  echo "| request | .tar.gz | .tar.zst | plain copy | .tar.gz / copy (best; median of pairs) | sizes (.tar.gz, .tar.zst) |"
  echo "|---|---|---|---|---|---|"
  for size in $sizes; do
    echo "| $size | ${PGZ[$size]} s | ${PZST[$size]} s | ${W[copy-$size]} s | $(ratio "${PGZ[$size]}" "${W[copy-$size]}"); ${MPACK[$size]} | $(mib "${GZ[$size]}"), $(mib "${ZST[$size]}") |"
  done
  if [[ " $sizes " == *" huge "* ]]; then
    echo
    echo "Issue 12's targets for the huge request: cold build / apt download-only = $(ratio "${W[opaas-cold-huge]}" "${W[apt-cold-huge]}") best/best,"
    echo "${MCOLD[huge]} median of the $runs alternating pairs (≤ 0.40); packing / plain copy = $(ratio "${PGZ[huge]}" "${W[copy-huge]}") best/best,"
    echo "${MPACK[huge]} median of the pairs (≤ 1.3); identical build again ${W[opaas-reuse-huge]} s (≤ 1 s)."
  fi
} >"$sec"
cat "$sec"
if [ "${BENCH_WRITE:-1}" != 0 ]; then
  doc=$here/docs/BENCHMARKS.md
  python3 - "$doc" "$sec" <<'EOF'
import sys
doc, sec = sys.argv[1], sys.argv[2]
text = open(doc).read()
begin, end = "<!-- bench.sh:begin -->", "<!-- bench.sh:end -->"
if begin not in text or end not in text:
    sys.exit("bench: %s has no %s … %s markers" % (doc, begin, end))
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(doc + ".tmp", "w").write(head + begin + "\n" + open(sec).read() + end + tail)
EOF
  mv "$doc.tmp" "$doc"
  echo "bench: wrote the section of $doc" >&2
fi
