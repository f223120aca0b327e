#!/bin/bash
# chroot-fleet-test.sh - a fleet patch bundle and a security-only one, proven on older systems.
#
# usage: scripts/e2e/chroot-fleet-test.sh TARGET
#   TARGET  SUITE-ARCH (bookworm-amd64), native arch only
# 1. Two older systems with different package sets: minbase chroots of TARGET from the release
#    pocket only, A with openssh-server nginx curl sudo (the chroot chroot-upgrade-test.sh makes,
#    shared through the cache), B with cron logrotate. Cached under
#    ${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}/chroots/.
# 2. The collect script runs in each (no network, its own UTS namespace: host names web01, db01).
# 3. Fleet: `opaas upgrade --from A --from B -o DIR` writes one bundle; each plan equals
#    `apt-get -s upgrade` of the real apt on that host's status. In a throw-away overlay of each
#    system, with its host name, install.sh exits 0, dpkg --audit is empty and apt on the full
#    archive has nothing left to upgrade. A third machine (B's system, host name stranger, one
#    package changed) is refused (exit 3, no plan) and changed nothing.
# 4. Security only: `opaas upgrade --security-only --from A` plans exactly what apt-get -s upgrade
#    does with the security pocket as the only source; every version in the plan is from it;
#    installed offline, apt (security pocket only) has nothing left to upgrade and every package
#    whose version changed went to its plan's security version. A copy of A's file with one
#    package the security pocket does not touch recorded older: the full plan takes it from the
#    release pocket, the security-only plan leaves it (as apt with only the security pocket).
# Nothing boots an init: everything runs in `unshare --mount --net --pid --uts --fork` + chroot.
# env: OPAAS (binary), OPAAS_E2E_CACHE, ORACLE_WORK, REBUILD=1, KEEP=1, OPAAS_MIRROR_DEBIAN.
# Output: PASS/FAIL lines; exit 1 when any check failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CACHE=${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}
OPAAS=${OPAAS:-$top/target/debug/opaas}
export ORACLE_WORK=${ORACLE_WORK:-$CACHE/oracle-upgrade}
[ $# -eq 1 ] || { sed -n '4,25p' "$0" >&2; exit 2; }
target=$1
suite=${target%-*} arch=${target##*-}
[ "$(id -u)" = 0 ] || { echo "must run as root (mount, unshare, chroot)" >&2; exit 2; }
for c in mmdebstrap unshare chroot mount python3; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install mmdebstrap util-linux)" >&2; exit 2; }
done
[ "$(dpkg --print-architecture)" = "$arch" ] || { echo "only native-arch targets" >&2; exit 2; }
case $suite in bookworm|bullseye|trixie) ;; *) echo "Debian targets only" >&2; exit 2 ;; esac
# shellcheck source=scripts/e2e/lib.sh
. "$here/lib.sh"
T0=$(ts)

# ---- 1. the older systems (cached; the same key as chroot-upgrade-test.sh) -------------------
A=$(old_system openssh-server nginx curl sudo)
B=$(old_system cron logrotate)
T1=$(ts)
echo "older systems: A $(grep -c '^Package:' "$A/var/lib/dpkg/status") packages, B $(grep -c '^Package:' "$B/var/lib/dpkg/status") packages ($(dt "$T0" "$T1") s)"

w=$(mktemp -d "$CACHE/fleet.XXXXXX")
trap cleanup EXIT
inside() {  # HOSTNAME ROOT COMMAND... : no network, own pid, mount and UTS namespace
  local h=$1 r=$2; shift 2
  # shellcheck disable=SC2016  # $0 and $@ are the inner sh's
  unshare --mount --net --pid --uts --fork --mount-proc="$r/proc" \
    sh -c 'hostname "$0" && exec chroot "$@"' "$h" "$r" "$@"
}
status_of() { sed -n '/^### \/var\/lib\/dpkg\/status$/,/^### \/var\/lib\/apt\/extended_states$/p' "$1" | sed '1d;$d'; }
plan_lines() {  # plan JSON (one host or a fleet) [HOST] -> sorted name=version lines
  python3 - "$1" "${2:-}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
plans = d["hosts"] if "hosts" in d else [d]
for p in plans:
    if sys.argv[2] and p["host"] != sys.argv[2]:
        continue
    for i in p["plan"]:
        print(f"{i['name']}={i['to']}")
PY
}

# ---- 2. collect -----------------------------------------------------------------------------
"$OPAAS" collect-script > "$w/collect.sh"
for h in web01:A db01:B; do
  name=${h%%:*}; sys=${h#*:}; lower=$A; [ "$sys" = B ] && lower=$B
  overlay "collect-$name" "$lower"
  cp "$w/collect.sh" "$w/collect-$name/root/collect.sh"
  inside "$name" "$w/collect-$name/root" sh /collect.sh > "$w/$name.opaas"
  check "collect on $name" "$(grep -qx "Hostname: $name" "$w/$name.opaas" && echo 0 || echo 1)" "$(wc -c < "$w/$name.opaas") bytes"
  status_of "$w/$name.opaas" > "$w/$name.status"
done

# ---- 3. the fleet bundle --------------------------------------------------------------------
rc=0; "$OPAAS" upgrade -q --from "$w/web01.opaas" --from "$w/db01.opaas" --json > "$w/fleet.json" 2>"$w/fleet.err" || rc=$?
check "opaas upgrade plans the fleet" "$rc" "$(head -c 200 "$w/fleet.err")"
for name in web01 db01; do
  plan_lines "$w/fleet.json" "$name" | LC_ALL=C sort > "$w/$name.plan"
  rc=0; "$top/scripts/oracle/apt-oracle.sh" --cmd upgrade --status "$w/$name.status" "$target" > "$w/$name.apt" 2>"$w/$name.apt.err" || rc=$?
  same=1; [ "$rc" = 0 ] && [ -s "$w/$name.plan" ] && cmp -s "$w/$name.plan" "$w/$name.apt" && same=0
  check "plan of $name equals apt-get -s upgrade on its status" "$same" "$(wc -l < "$w/$name.plan") vs apt $(wc -l < "$w/$name.apt") packages$( [ $same = 0 ] || echo ": $(diff "$w/$name.plan" "$w/$name.apt" | head -5 | tr '\n' ' ')")"
done
differ=1; cmp -s "$w/web01.plan" "$w/db01.plan" || differ=0
check "the two plans differ" "$differ"
mkdir -p "$w/out"
T2=$(ts)
rc=0; bundle=$("$OPAAS" upgrade -q --from "$w/web01.opaas" --from "$w/db01.opaas" -o "$w/out" 2>"$w/build.err") || rc=$?
check "one bundle for both hosts" "$rc" "$(basename "${bundle:-none}"), $(du -h "${bundle:-/dev/null}" | cut -f1), $(dt "$T2" "$(ts)") s $(head -c 200 "$w/build.err")"
top_dir=$(tar -tzf "$bundle" | awk -F/ 'NR == 1 { print $1 }')
for h in web01:A db01:B; do
  name=${h%%:*}; sys=${h#*:}; lower=$A; [ "$sys" = B ] && lower=$B
  overlay "up-$name" "$lower"
  tar -xzf "$bundle" -C "$w/up-$name/root/root"
  T3=$(ts)
  rc=0; inside "$name" "$w/up-$name/root" bash "/root/$top_dir/install.sh" > "$w/$name.install" 2>&1 </dev/null || rc=$?
  picked=$(grep -c "this machine uses the plan of / 本机使用方案: $name (matched by / 匹配依据: host name" "$w/$name.install" || true)
  check "install.sh on $name picks its plan and upgrades offline" "$([ "$rc" = 0 ] && [ "$picked" = 1 ] && echo 0 || echo 1)" "exit $rc, $(dt "$T3" "$(ts)") s$( [ "$rc" = 0 ] || echo ": $(grep -m2 -E '^(error|错误)' "$w/$name.install" | tr '\n' ' ')")"
  audit=$(inside "$name" "$w/up-$name/root" dpkg --audit 2>&1 || true)
  check "dpkg --audit is empty on $name" "$([ -z "$audit" ] && echo 0 || echo 1)"
  cp "$w/up-$name/root/var/lib/dpkg/status" "$w/$name.after"
  left=$("$top/scripts/oracle/apt-oracle.sh" --cmd upgrade --status "$w/$name.after" "$target" 2>/dev/null || echo "oracle failed")
  check "apt on the full archive has nothing left to upgrade on $name" "$([ -z "$left" ] && echo 0 || echo 1)" "$(echo "$left" | head -3 | tr '\n' ' ')"
  cp "$w/$name.install" "$CACHE/logs/fleet-$target-$name.install" 2>/dev/null || true
done
# a machine the bundle has no plan for: B's system under another name, one package changed
overlay stranger "$B"
tar -xzf "$bundle" -C "$w/stranger/root/root"
python3 - "$w/stranger/root/var/lib/dpkg/status" <<'PY'
import sys
path = sys.argv[1]
out, cur = [], None
for line in open(path, encoding="utf-8"):
    if line.startswith("Package: "):
        cur = line[9:].strip()
    if cur == "logrotate" and line.startswith("Version: "):
        line = "Version: " + line[9:].strip() + "+local1\n"
    out.append(line)
open(path, "w", encoding="utf-8").writelines(out)
PY
s0=$(sha256sum < "$w/stranger/root/var/lib/dpkg/status")
rc=0; inside stranger "$w/stranger/root" bash "/root/$top_dir/install.sh" > "$w/stranger.out" 2>&1 </dev/null || rc=$?
s1=$(sha256sum < "$w/stranger/root/var/lib/dpkg/status")
ok=1; [ "$rc" = 3 ] && grep -q "this bundle has no plan for this machine" "$w/stranger.out" && [ "$s0" = "$s1" ] && ok=0
check "a host without a plan is refused (exit 3) and unchanged" "$ok" "exit $rc: $(grep -m1 '^error' "$w/stranger.out" | cut -c1-140)"

# ---- 4. security only -----------------------------------------------------------------------
rc=0; "$OPAAS" upgrade -q --security-only --from "$w/web01.opaas" --json > "$w/sec.json" 2>"$w/sec.err" || rc=$?
check "opaas upgrade --security-only plans" "$rc" "$(head -c 200 "$w/sec.err")"
plan_lines "$w/sec.json" | LC_ALL=C sort > "$w/sec.plan"
pockets=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(sorted({i["pocket"] for i in d["plan"]})))' "$w/sec.json")
check "every version of the security-only plan is from the security pocket" "$(case " $pockets " in *" $suite-security/"*) [ "$(echo "$pockets" | tr ' ' '\n' | grep -vc -- "-security/")" = 0 ] && echo 0 || echo 1 ;; *) echo 1 ;; esac)" "$(wc -l < "$w/sec.plan") packages from: $pockets"
rc=0; "$top/scripts/oracle/apt-oracle.sh" --security-only --cmd upgrade --status "$w/web01.status" "$target" > "$w/sec.apt" 2>"$w/sec.apt.err" || rc=$?
same=1; [ "$rc" = 0 ] && [ -s "$w/sec.plan" ] && cmp -s "$w/sec.plan" "$w/sec.apt" && same=0
check "the security-only plan equals apt-get -s upgrade with only the security pocket" "$same" "$(wc -l < "$w/sec.plan") vs apt $(wc -l < "$w/sec.apt")$( [ $same = 0 ] || echo ": $(diff "$w/sec.plan" "$w/sec.apt" | head -5 | tr '\n' ' ')")"
# a package the release pocket (not the security pocket) upgrades: one that security does not
# touch, recorded older in a copy of the collected file; the full plan takes it, security-only not
victim=$(python3 - "$w/web01.status" "$w/sec.plan" <<'PY'
import sys
sec = {l.split("=")[0] for l in open(sys.argv[2])}
names = [l[9:].strip() for l in open(sys.argv[1], encoding="utf-8") if l.startswith("Package: ")]
pick = [n for n in ["sudo", "logrotate", "less", "nginx", "curl"] if n in names and n not in sec]
pick += [n for n in names if n not in sec]
print(pick[0] if pick else "")
PY
)
python3 - "$w/web01.opaas" "$victim" "$w/web01-old.opaas" <<'PY'
import sys
src, name, dst = sys.argv[1:4]
out, cur = [], None
for line in open(src, encoding="utf-8"):
    if line.startswith("Package: "):
        cur = line[9:].strip()
    if cur == name and line.startswith("Version: "):
        line = "Version: " + line[9:].strip() + "~old0\n"
    out.append(line)
open(dst, "w", encoding="utf-8").writelines(out)
PY
status_of "$w/web01-old.opaas" > "$w/web01-old.status"
"$OPAAS" upgrade -q --from "$w/web01-old.opaas" --json > "$w/old-full.json" 2>/dev/null || true
"$OPAAS" upgrade -q --security-only --from "$w/web01-old.opaas" --json > "$w/old-sec.json" 2>/dev/null || true
full_has=$(plan_lines "$w/old-full.json" | grep -c "^$victim=" || true)
sec_has=$(plan_lines "$w/old-sec.json" | grep -c "^$victim=" || true)
plan_lines "$w/old-sec.json" | LC_ALL=C sort > "$w/old-sec.plan"
rc=0; "$top/scripts/oracle/apt-oracle.sh" --security-only --cmd upgrade --status "$w/web01-old.status" "$target" > "$w/old-sec.apt" 2>/dev/null || rc=$?
ok=1; [ -n "$victim" ] && [ "$full_has" = 1 ] && [ "$sec_has" = 0 ] && [ "$rc" = 0 ] && cmp -s "$w/old-sec.plan" "$w/old-sec.apt" && ok=0
check "security only leaves out a release-pocket upgrade ($victim), as apt with only the security pocket does" "$ok" "full plan: $full_has, security-only: $sec_has, apt: $(grep -c "^$victim=" "$w/old-sec.apt" || true)"
mkdir -p "$w/sec-out"
rc=0; sbundle=$("$OPAAS" upgrade -q --security-only --from "$w/web01.opaas" -o "$w/sec-out" 2>"$w/sec-build.err") || rc=$?
check "opaas upgrade --security-only -o writes the bundle" "$rc" "$(basename "${sbundle:-none}")"
sname=$(tar -tzf "$sbundle" | awk -F/ 'NR == 1 { print $1 }')
overlay sec "$A"
tar -xzf "$sbundle" -C "$w/sec/root/root"
rc=0; inside web01 "$w/sec/root" bash "/root/$sname/install.sh" > "$w/sec.install" 2>&1 </dev/null || rc=$?
check "the security-only bundle installs offline" "$rc" "exit $rc$( [ "$rc" = 0 ] || echo ": $(grep -m2 -E '^(error|错误)' "$w/sec.install" | tr '\n' ' ')")"
cp "$w/sec/root/var/lib/dpkg/status" "$w/sec.after"
changed=$(python3 - "$w/web01.status" "$w/sec.after" <<'PY'
import sys
def vers(p):
    out, name = {}, None
    for l in open(p, encoding="utf-8"):
        if l.startswith("Package: "): name = l[9:].strip()
        elif l.startswith("Version: ") and name: out[name] = l[9:].strip()
    return out
a, b = vers(sys.argv[1]), vers(sys.argv[2])
for n in sorted(b):
    if a.get(n) != b[n]:
        print(f"{n}={b[n]}")
PY
)
same=1; [ "$(printf '%s\n' "$changed" | LC_ALL=C sort)" = "$(cat "$w/sec.plan")" ] && same=0
check "exactly the plan's packages changed, each to its security version" "$same" "$(printf '%s\n' "$changed" | grep -c . ) changed"
left=$("$top/scripts/oracle/apt-oracle.sh" --security-only --cmd upgrade --status "$w/sec.after" "$target" 2>/dev/null || echo "oracle failed")
check "apt with the security pocket has nothing left to upgrade" "$([ -z "$left" ] && echo 0 || echo 1)" "$(echo "$left" | head -3 | tr '\n' ' ')"
echo "total $(dt "$T0" "$(ts)") s"
if [ "$fails" = 0 ]; then echo "RESULT PASS"; else echo "RESULT FAIL ($fails)"; exit 1; fi
