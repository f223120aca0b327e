#!/bin/bash
# bench.sh - OPaaS side by side with apt on the same mirror (results go to docs/BENCHMARKS.md).
#
# usage: scripts/bench.sh TARGET [RUNS]      TARGET: SUITE-ARCH (noble-amd64, bookworm-arm64, …)
# Measures, with /usr/bin/time (wall seconds, peak RSS):
#   1. cold index update: `opaas update` into an empty cache vs `apt-get update` in a fresh
#      private root (same sources: main, -updates, -security; same components)
#   2. warm whole-process resolve of the large request vs `apt-get -s install` with a warm
#      pkgcache (both on the oracle kit's baseline status file)
#   3. cold download + bundle of the large request (empty .deb cache) vs apt's
#      `install --download-only` into an empty directory, and a warm rebuild
# env: OPAAS (default target/release/opaas), ORACLE (default scripts/oracle/apt-oracle.sh),
#      mirrors as for opaas and the oracle.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
OPAAS=${OPAAS:-$here/target/release/opaas}
ORACLE=${ORACLE:-$here/scripts/oracle/apt-oracle.sh}
target=$1 runs=${2:-5}
suite=${target%-*} arch=${target##*-}
case $suite in noble) distro=ubuntu-24.04;; jammy) distro=ubuntu-22.04;; bookworm) distro=debian-12;; bullseye) distro=debian-11;; trixie) distro=debian-13;; *) exit 2;; esac
status=$(dirname "$ORACLE")/status/$target.status
REQ="docker.io openssh-server vim nginx htop jq curl git python3"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
measure() { # label cmd... -> "label wall_s rss_mb"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>"$work/err" || { echo "FAILED: $label" >&2; cat "$work/err" >&2; return 1; }
  read -r s kb < "$work/t"; echo "$label $s $((kb/1024))"
}
best() { sort -k2 -n | head -1; }
echo "# $target, $(nproc) cores, $(date -u +%Y-%m-%d)"
for _ in $(seq "$runs"); do
  rm -rf "$work/cache"
  OPAAS_CACHE_DIR=$work/cache measure "opaas-update-cold" "$OPAAS" update -q -d "$distro" -a "$arch"
done | best
for _ in $(seq "$runs"); do
  rm -rf "$work/oracle"
  ORACLE_WORK=$work/oracle measure "apt-update-cold" "$ORACLE" --update "$target"
done | best
# warm load + resolve, whole process
OPAAS_CACHE_DIR=$work/cache "$OPAAS" update -q -d "$distro" -a "$arch" >/dev/null 2>&1
for _ in $(seq "$runs"); do
  # shellcheck disable=SC2086
  OPAAS_CACHE_DIR=$work/cache measure "opaas-resolve-warm" "$OPAAS" resolve -q --offline -d "$distro" -a "$arch" --baseline "$status" $REQ
done | best
for _ in $(seq "$runs"); do
  OPAAS_CACHE_DIR=$work/cache measure "opaas-show-warm" "$OPAAS" show --offline -d "$distro" -a "$arch" jq
done | best
ORACLE_WORK=$work/oracle "$ORACLE" "$target" >/dev/null 2>&1 || true
# shellcheck disable=SC2086
ORACLE_WORK=$work/oracle "$ORACLE" "$target" $REQ >/dev/null 2>&1 || true   # builds pkgcache.bin
for _ in $(seq "$runs"); do
  # shellcheck disable=SC2086
  ORACLE_WORK=$work/oracle measure "apt-resolve-warm" "$ORACLE" "$target" $REQ
done | best
# 3. downloads: the large request's .debs, cold (empty .deb cache, warm indices) vs apt
#    `install --download-only` into an empty directory; then a warm rebuild (nothing to fetch)
for _ in $(seq "$runs"); do
  rm -rf "$work/cache/debs-v1" "$work/out"
  # shellcheck disable=SC2086
  OPAAS_CACHE_DIR=$work/cache measure "opaas-build-cold" "$OPAAS" build -q --offline -d "$distro" -a "$arch" --baseline "$status" -o "$work/out" $REQ
done | best
for _ in $(seq "$runs"); do
  rm -rf "$work/out"
  # shellcheck disable=SC2086
  OPAAS_CACHE_DIR=$work/cache measure "opaas-build-warm" "$OPAAS" build -q --offline -d "$distro" -a "$arch" --baseline "$status" -o "$work/out" $REQ
done | best
for _ in $(seq "$runs"); do
  rm -rf "$work/debs"; mkdir -p "$work/debs"
  # shellcheck disable=SC2086
  ORACLE_WORK=$work/oracle measure "apt-download-cold" "$ORACLE" --download "$work/debs" "$target" $REQ
done | best
