#!/bin/bash
# chroot-upgrade-test.sh - prove an upgrade (patch) bundle works offline on an older system.
#
# usage: scripts/e2e/chroot-upgrade-test.sh [--full] TARGET PKG...
#   TARGET  SUITE-ARCH (bookworm-amd64, noble-amd64, ...), native arch only
# 1. An older system: a minbase chroot of TARGET from the release pocket only, plus PKG...
#    (cached under ${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}/chroots/TARGET-old-*).
# 2. `opaas collect-script` runs inside it (no network) and writes the collected file.
# 3. `opaas upgrade --from FILE [--full] -o DIR` plans and writes the bundle; the plan must equal
#    `apt-get -s upgrade|dist-upgrade` of the real apt on the same status (the oracle kit).
# 4. In a throw-away overlay with no network: install.sh exits 0, `dpkg --audit` is empty, and
#    apt, pointed at the full archive again (the oracle on the upgraded status), has nothing left
#    to upgrade; a second run exits 0 and changes nothing.
# 5. Drift: in a fresh overlay one package's installed version is changed after collection;
#    install.sh refuses (exit 3) naming it, and changes nothing.
# Nothing boots an init: everything runs in `unshare --mount --net --pid --fork` + chroot.
# env: OPAAS (binary), OPAAS_E2E_CACHE, ORACLE_WORK, REBUILD=1, KEEP=1, mirrors as in the oracle kit.
# Output: PASS/FAIL lines; exit 1 when any check failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CACHE=${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}
OPAAS=${OPAAS:-$top/target/debug/opaas}
export ORACLE_WORK=${ORACLE_WORK:-$CACHE/oracle-upgrade}
full=(); cmd=upgrade
[ "${1:-}" = --full ] && { full=(--full); cmd=dist-upgrade; shift; }
[ $# -ge 1 ] || { sed -n '4,18p' "$0" >&2; exit 2; }
target=$1; shift
pkgs=("$@")
suite=${target%-*} arch=${target##*-}
[ "$(id -u)" = 0 ] || { echo "must run as root (mount, unshare, chroot)" >&2; exit 2; }
for c in mmdebstrap unshare chroot mount; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install mmdebstrap util-linux)" >&2; exit 2; }
done
[ "$(dpkg --print-architecture)" = "$arch" ] || { echo "only native-arch targets ($arch != $(dpkg --print-architecture))" >&2; exit 2; }
# shellcheck source=scripts/e2e/lib.sh
. "$here/lib.sh"
T0=$(ts)

# ---- 1. the older system (cached) ------------------------------------------------------------
base=$(old_system "${pkgs[@]}")
T1=$(ts)
echo "older system: $base ($(grep -c '^Package:' "$base/var/lib/dpkg/status") packages, $(dt "$T0" "$T1") s)"

w=$(mktemp -d "$CACHE/upgrade.XXXXXX")
trap cleanup EXIT
inside() {  # ROOT COMMAND... : no network, own pid and mount namespace, /proc mounted
  local r=$1; shift
  unshare --mount --net --pid --fork --mount-proc="$r/proc" chroot "$r" "$@"
}

# ---- 2. collect -----------------------------------------------------------------------------
overlay collect "$base"
"$OPAAS" collect-script > "$w/collect/root/collect.sh"
inside "$w/collect/root" sh /collect.sh > "$w/host.opaas"
check "collect script runs offline" 0 "$(wc -c < "$w/host.opaas") bytes, $(sed -n 's/^Hostname: //p' "$w/host.opaas")"

# ---- 3. plan and bundle ---------------------------------------------------------------------
mkdir -p "$w/out"
rc=0; "$OPAAS" upgrade -q "${full[@]}" --from "$w/host.opaas" --json > "$w/plan.json" 2>"$w/plan.err" || rc=$?
check "opaas upgrade plans" "$rc" "$(head -c 200 "$w/plan.err")"
python3 - "$w/plan.json" > "$w/plan.txt" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["plan"]:
    print(f"{p['name']}={p['to']}")
for r in d["remove"]:
    print(f"remove {r}")
PY
LC_ALL=C sort -o "$w/plan.txt" "$w/plan.txt"
sed -n '/^### \/var\/lib\/dpkg\/status$/,/^### \/var\/lib\/apt\/extended_states$/p' "$w/host.opaas" | sed '1d;$d' > "$w/collected.status"
rc=0; "$top/scripts/oracle/apt-oracle.sh" --cmd "$cmd" --status "$w/collected.status" "$target" > "$w/apt.txt" 2>"$w/apt.err" || rc=$?
sed -n 's/^Remv \([^ ]*\).*/remove \1/p' "$w/apt.err" >> "$w/apt.txt"
LC_ALL=C sort -o "$w/apt.txt" "$w/apt.txt"
same=1; [ "$rc" = 0 ] && cmp -s "$w/plan.txt" "$w/apt.txt" && same=0
check "the plan equals apt-get -s $cmd on the same status" "$same" "$(wc -l < "$w/plan.txt") vs apt $(wc -l < "$w/apt.txt") lines$( [ $same = 0 ] || echo ": $(diff "$w/plan.txt" "$w/apt.txt" | head -5 | tr '\n' ' ')")"
rc=0; bundle=$("$OPAAS" upgrade -q "${full[@]}" --from "$w/host.opaas" -o "$w/out" 2>"$w/build.err") || rc=$?
check "opaas upgrade -o writes the bundle" "$rc" "$(basename "${bundle:-none}") $(head -c 200 "$w/build.err")"
name=$(tar -tzf "$bundle" | awk -F/ 'NR == 1 { print $1 }')

# ---- 4. install offline, twice --------------------------------------------------------------
overlay up "$base"
tar -xzf "$bundle" -C "$w/up/root/root"
T2=$(ts)
rc=0; inside "$w/up/root" bash "/root/$name/install.sh" > "$w/install1.out" 2>&1 </dev/null || rc=$?
check "install.sh upgrades offline" "$rc" "exit $rc, $(dt "$T2" "$(ts)") s$( [ "$rc" = 0 ] || echo ": $(grep -m2 -E '^(error|错误)' "$w/install1.out" | tr '\n' ' ')")"
audit=$(inside "$w/up/root" dpkg --audit 2>&1 || true)
check "dpkg --audit is empty" "$([ -z "$audit" ] && echo 0 || echo 1)" "$(echo "$audit" | head -3 | tr '\n' ' ')"
cp "$w/up/root/var/lib/dpkg/status" "$w/after.status"
left=$("$top/scripts/oracle/apt-oracle.sh" --cmd "$cmd" --status "$w/after.status" "$target" 2>/dev/null || echo "oracle failed")
check "apt on the full archive has nothing left to $cmd" "$([ -z "$left" ] && echo 0 || echo 1)" "$(echo "$left" | head -5 | tr '\n' ' ')"
s1=$(sha256sum < "$w/up/root/var/lib/dpkg/status")
rc=0; inside "$w/up/root" bash "/root/$name/install.sh" > "$w/install2.out" 2>&1 </dev/null || rc=$?
s2=$(sha256sum < "$w/up/root/var/lib/dpkg/status")
check "a second run exits 0 and changes nothing" "$([ "$rc" = 0 ] && [ "$s1" = "$s2" ] && echo 0 || echo 1)" "exit $rc"

# ---- 5. drift -------------------------------------------------------------------------------
overlay drift "$base"
tar -xzf "$bundle" -C "$w/drift/root/root"
victim=$(python3 - "$w/plan.txt" <<'PY'
import sys
for l in open(sys.argv[1]):
    if not l.startswith("remove "):
        print(l.split("=")[0]); break
PY
)
if [ -n "$victim" ]; then
  # the package changed after collection: dpkg now records another version of it
  python3 - "$w/drift/root/var/lib/dpkg/status" "$victim" <<'PY'
import sys
path, name = sys.argv[1], sys.argv[2]
out, cur = [], None
for line in open(path, encoding="utf-8"):
    if line.startswith("Package: "):
        cur = line[9:].strip()
    if cur == name and line.startswith("Version: "):
        line = "Version: " + line[9:].strip() + "+drift1\n"
    out.append(line)
open(path, "w", encoding="utf-8").writelines(out)
PY
  s0=$(sha256sum < "$w/drift/root/var/lib/dpkg/status")
  rc=0; inside "$w/drift/root" bash "/root/$name/install.sh" > "$w/drift.out" 2>&1 </dev/null || rc=$?
  s1=$(sha256sum < "$w/drift/root/var/lib/dpkg/status")
  ok=1; [ "$rc" = 3 ] && grep -q "$victim" "$w/drift.out" && [ "$s0" = "$s1" ] && ok=0
  check "a drifted machine is refused (exit 3) naming $victim" "$ok" "exit $rc: $(grep -m1 '^error' "$w/drift.out" | cut -c1-120)"
else
  check "drift check" 1 "the plan upgrades nothing; no package to change"
fi
cp "$w/install1.out" "$CACHE/logs/upgrade-$target-install1.out" 2>/dev/null || true
echo "total $(dt "$T0" "$(ts)") s"
if [ "$fails" = 0 ]; then echo "RESULT PASS"; else echo "RESULT FAIL ($fails)"; exit 1; fi
