#!/bin/bash
# apt-oracle.sh - the project's apt oracle: what the real `apt-get` would install (or upgrade) on a
# target, asked in a private apt root. The host's apt and dpkg state are never touched: APT_CONFIG
# points every directory into the root, and apt only simulates (-s).
#
# usage: apt-oracle.sh [options] TARGET [PKG...]
#   TARGET      SUITE-ARCH: bookworm-amd64, bullseye-amd64, trixie-arm64, noble-amd64, jammy-amd64, ...
#   --status F  the target's dpkg status (default: status/TARGET.status beside this script)
#   --no-recommends   APT::Install-Recommends=false (apt's default is true)
#   --cmd C     install (default), upgrade or dist-upgrade (PKG… installed in the same run)
#   --with-arch print pkg:arch=version
#   -o OPT      pass an apt option (e.g. APT::Get::Never-Include-Phased-Updates=true), repeatable
#   --update    refresh the private root's indices
#   --security-only  the security pocket(s) alone as sources (what `opaas … --security-only`
#               means), in a root of its own
#   --download D  really download what `install PKG...` needs into directory D (apt-get install
#               --download-only, archives in D; nothing is installed), instead of simulating
# The mirrors are the ones opaas itself would use for that target (`opaas mirrors --json`: flag,
# env, config file, the host's APT sources, preset), so both sides read the same archive; the
# keyring is the project's own copy (keyrings/). OPAAS names the opaas binary (default: the
# workspace's target/debug/opaas, else target/release/opaas).
# output: sorted `pkg=version` lines, one per package apt would newly install or upgrade;
#         `Remv` lines on stderr; exit 100 with apt's message when apt refuses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
work=${ORACLE_WORK:-${TMPDIR:-/tmp}/opaas-oracle}

update=0 recommends=true statusfile="" witharch=0 cmd=install aptopts=() download="" seconly=0
while [ $# -gt 0 ]; do
  case "$1" in
    --update) update=1; shift;;
    --no-recommends) recommends=false; shift;;
    --status) statusfile=$2; shift 2;;
    --with-arch) witharch=1; shift;;
    --cmd) cmd=$2; shift 2;;
    -o) aptopts+=(-o "$2"); shift 2;;
    --download) download=$2; shift 2;;
    --security-only) seconly=1; shift;;
    -h|--help) sed -n '2,24p' "$0"; exit 0;;
    --) shift; break;;
    -*) echo "apt-oracle: unknown option $1" >&2; exit 2;;
    *) break;;
  esac
done
[ $# -ge 1 ] || { echo "usage: $0 [options] SUITE-ARCH [PKG...]" >&2; exit 2; }
target=$1; shift
suite=${target%-*}; arch=${target##*-}
case $cmd in install|upgrade|dist-upgrade) ;; *) echo "apt-oracle: unknown --cmd $cmd" >&2; exit 2;; esac
case "$suite" in
  bullseye) distro=debian-11;; bookworm) distro=debian-12;; trixie) distro=debian-13;;
  jammy) distro=ubuntu-22.04;; noble) distro=ubuntu-24.04;;
  *) echo "apt-oracle: unknown suite '$suite' (bullseye, bookworm, trixie, jammy, noble)" >&2; exit 2;;
esac
case "$distro" in debian-*) kr=$top/keyrings/debian-archive-keyring.gpg;; *) kr=$top/keyrings/ubuntu-archive-keyring.gpg;; esac

opaas=${OPAAS:-}
if [ -z "$opaas" ]; then
  for b in "$top/target/debug/opaas" "$top/target/release/opaas"; do [ -x "$b" ] && { opaas=$b; break; }; done
fi
if [ -z "$opaas" ] || [ ! -x "$opaas" ]; then echo "apt-oracle: no opaas binary (cargo build, or set OPAAS)" >&2; exit 2; fi

# one deb822 stanza per pocket, from the mirrors opaas resolves for this target
sources=$("$opaas" mirrors --json -d "$distro" -a "$arch" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
if not doc["pockets"]:
    sys.exit("apt-oracle: no mirror configured for %s %s: %s" % (doc["distro"], doc["arch"], doc["how"]["main"]))
for p in doc["pockets"]:
    if sys.argv[2] == "1" and not p["suite"].endswith("-security"):
        continue
    uri = p["url"][: -len("/dists/%s/" % p["suite"])]
    print("Types: deb\nURIs: %s\nSuites: %s\nComponents: %s\nSigned-By: %s\n" % (uri, p["suite"], " ".join(p["components"]), sys.argv[1]))
' "$kr" "$seconly")

root=$work/roots/$target
[ "$seconly" = 0 ] || root=$work/roots/$target-security
conf=$root/apt.conf
mkdir -p "$root"/etc/apt/{apt.conf.d,preferences.d,trusted.gpg.d,sources.list.d} \
         "$root"/var/lib/apt/lists/partial "$root"/var/cache/apt/archives/partial \
         "$root"/var/lib/dpkg "$root"/var/log/apt
# One apt root serves one question at a time: the status file below is copied into the root, so two
# callers sharing ORACLE_WORK (the live upgrade and fleet tests run in parallel threads) would
# otherwise answer each other's question. The lock is held until this script (or the exec'd apt)
# exits.
exec 8>"$root/.oracle.lock"; flock 8
if ! cmp -s <(printf '%s\n' "$sources") "$root/etc/apt/sources.list.d/target.sources" 2>/dev/null; then
  printf '%s\n' "$sources" >"$root/etc/apt/sources.list.d/target.sources"; update=1
fi
: >"$root/etc/apt/sources.list"
# APT_CONFIG is read before Dir::Etc::parts, so nothing of the host's apt.conf.d is read
cat >"$conf" <<EOC
Dir "$root/";
Dir::State::status "$root/var/lib/dpkg/status";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
Acquire::Languages "none";
Acquire::Retries "3";
APT::Get::Assume-Yes "true";
APT::Install-Suggests "false";
EOC
sf=${statusfile:-$here/status/$target.status}
[ -r "$sf" ] || { echo "apt-oracle: no status file $sf" >&2; exit 2; }
# copied only when it changed, so apt can keep its pkgcache.bin
cmp -s "$sf" "$root/var/lib/dpkg/status" 2>/dev/null || cp "$sf" "$root/var/lib/dpkg/status"

export APT_CONFIG=$conf DEBIAN_FRONTEND=noninteractive
if [ "$update" = 1 ] || [ -z "$(find "$root/var/lib/apt/lists" -maxdepth 1 -name '*Packages*' -print -quit)" ]; then
  apt-get -q update >&2
fi
[ $# -ge 1 ] || [ "$cmd" != install ] || exit 0

if [ -n "$download" ]; then
  # the archives go to D (its partial/ too); apt's sandbox user need not be able to write there
  mkdir -p "$download/partial"
  exec apt-get -q -o APT::Install-Recommends=$recommends "${aptopts[@]}" -o Dir::Cache::archives="$(cd "$download" && pwd)/" \
    -o APT::Sandbox::User=root install --download-only "$@" >&2
fi

out=$(apt-get -s -o APT::Install-Recommends=$recommends "${aptopts[@]}" "$cmd" "$@" 2>&1) || { echo "$out" >&2; exit 100; }
echo "$out" | grep '^Remv ' >&2 || true
if [ $witharch = 1 ]; then
  echo "$out" | sed -n 's/^Inst \([^ ]*\) \(\[[^]]*\] \)\?(\([^ ]*\) .*\[\([^]]*\)\].*/\1:\4=\3/p' | LC_ALL=C sort
else
  echo "$out" | sed -n 's/^Inst \([^ ]*\) \(\[[^]]*\] \)\?(\([^ ]*\) .*/\1=\3/p' | LC_ALL=C sort
fi
