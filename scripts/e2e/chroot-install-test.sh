#!/bin/bash
# chroot-install-test.sh - prove a bundle installs offline: run its install.sh in a throw-away
# overlay of a minimal TARGET chroot, with no network at all, and check the result.
#
# usage: scripts/e2e/chroot-install-test.sh BUNDLE_DIR_OR_TARBALL TARGET [CHECK...]
#   TARGET  SUITE-ARCH (bookworm-amd64, bullseye-amd64, noble-amd64, ...), native arch only
# always checked: install.sh exits 0; every requested package is `ii`; `dpkg --audit` is empty;
#   no trace: /etc/apt and apt's lists/caches unchanged, no temp dir left, the log exists; a
#   signed bundle was read by apt as a signed source (signed-by= the target's keyring, no
#   trusted=yes).
# optional CHECKs (each one argument):
#   cmd:COMMAND     COMMAND (run with bash -c inside the chroot) exits 0, e.g. 'cmd:jq --version'
#   http:PORT       something answers HTTP on 127.0.0.1:PORT (e.g. nginx started by install.sh)
#   rerun           a second `bash install.sh` exits 0 and changes nothing (dpkg status identical)
#   wrong-target    the bundle's install.sh re-rendered for another codename and for another arch
#                   is refused (non-zero, bilingual message); --force gets past the codename one
#   dry-run         before installing: --dry-run exits 0 and changes nothing
#   no-start        before installing: --no-start installs, starts nothing, leaves no policy-rc.d
#                   (then the main install runs and starts the services)
#   refusals        before installing: a corrupt copy (exit 4), a held dpkg lock (exit 5, fcntl
#                   lock as apt takes it), --only with an unknown package (exit 2) and a non-root
#                   user (exit 3) are refused and change nothing
#   tamper          (signed bundles) before installing: copies with one flipped byte in a .deb
#                   and with an edited Packages.xz (SHA256SUMS made to match, as an attacker
#                   would) are refused by install.sh with exit 4, naming the file, before dpkg
#                   runs (dpkg status and /var/log/dpkg.log unchanged)
#   systemd-stub    after installing: with a fake /run/systemd/system and a stub systemctl,
#                   install.sh takes its systemd path (systemctl enable --now UNIT)
# The minimal chroot (mmdebstrap --variant=minbase, merged-usr hook for bookworm, like the
# oracle's make-status.sh) is built once and cached under ${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}.
# Nothing boots an init: install.sh runs in `unshare --mount --net --pid --fork --mount-proc`
# + chroot; every process started inside dies with the namespace. No policy-rc.d is installed:
# install.sh starts the services itself (SysV init scripts, since systemd is not running).
# env: OPAAS_E2E_CACHE, REBUILD=1 (rebuild the cached chroot), KEEP=1 (keep the overlay),
#      mirrors as in the oracle kit (OPAAS_MIRROR_DEBIAN, OPAAS_SECURITY_MIRROR_DEBIAN,
#      OPAAS_MIRROR_UBUNTU, or the host's APT sources).
# Output: one PASS/FAIL line per check, timings; exit 1 when any check failed. Logs of every run
# (install output, install.sh's own log) are kept in $OPAAS_E2E_CACHE/logs/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || echo "$here/../..")
CACHE=${OPAAS_E2E_CACHE:-/var/tmp/opaas-e2e}

[ $# -ge 2 ] || { sed -n '5,20p' "$0" >&2; exit 2; }
bundle=$(realpath "$1") target=$2; shift 2
checks=("$@")
suite=${target%-*} arch=${target##*-}
[ "$(id -u)" = 0 ] || { echo "must run as root (mount, unshare, chroot)" >&2; exit 2; }
for c in mmdebstrap unshare chroot mount sha256sum; do
  command -v "$c" >/dev/null || { echo "missing $c (apt-get install mmdebstrap util-linux)" >&2; exit 2; }
done
[ "$(dpkg --print-architecture)" = "$arch" ] || { echo "only native-arch targets are supported here ($arch != $(dpkg --print-architecture)); see the oracle's binfmt-userns.sh" >&2; exit 2; }
for c in "${checks[@]}"; do
  case $c in cmd:?*|http:[0-9]*|rerun|wrong-target|dry-run|no-start|refusals|tamper|systemd-stub) ;;
    *) echo "unknown check '$c'" >&2; exit 2 ;; esac
done

# shellcheck source=scripts/e2e/lib.sh
. "$here/lib.sh"
T0=$(ts)

# ---- 1. the cached minimal chroot --------------------------------------------------------
base=$CACHE/chroots/$target
chroot_state=$(cached_chroot "$base" apt "" -updates -security)
T1=$(ts)
echo "chroot: $base ($chroot_state, $(grep -c '^Package:' "$base/var/lib/dpkg/status") packages, $(dt "$T0" "$T1") s)"

# ---- 2. throw-away overlay with the bundle in /root --------------------------------------
w=$(mktemp -d "$CACHE/run.XXXXXX")
R=$w/root
mkdir -p "$w/upper" "$w/work" "$R"
cleanup() {
  set +e
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $R (umount $R; rm -rf $w)" >&2; return; fi
  local i t
  t=$(ts)
  for i in 1 2 3 4 5 6 7 8 9 10; do
    mountpoint -q "$R" || break
    umount "$R" 2>/dev/null || { sleep 0.5; [ "$i" = 10 ] && umount -l "$R"; }
  done
  rm -rf "$w"
  echo "cleanup (umount, rm overlay): $(dt "$t" "$(ts)") s"
}
trap cleanup EXIT
mount -t overlay overlay -o "lowerdir=$base,upperdir=$w/upper,workdir=$w/work" "$R"
if [ -f "$bundle" ]; then
  tar -xzf "$bundle" -C "$R/root"
  name=$(tar -tzf "$bundle" | awk -F/ 'NR == 1 { print $1 }')   # awk reads all: no SIGPIPE
else
  cp -a "$bundle" "$R/root/"
  name=$(basename "$bundle")
fi
B=/root/$name
[ -f "$R$B/install.sh" ] || { echo "no install.sh in $bundle" >&2; exit 2; }
rm -f "$R/usr/sbin/policy-rc.d"          # install.sh must be free to start services
logdir=$CACHE/logs/$(date +%Y%m%d-%H%M%S)-$name
mkdir -p "$logdir" "$R/opaas-e2e"
printf '%s\n' "${checks[@]}" > "$R/opaas-e2e/checks"

# SHA256SUMS of bundle directory $1 made to match its files again (what an attacker does too)
resum() {
  local sums
  sums=$(cd "$1" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum)
  rm -f "$1/SHA256SUMS"; printf '%s\n' "$sums" > "$1/SHA256SUMS"
}

# wrong-target variants: the same bundle, install.sh re-rendered for another codename / arch
if printf '%s\n' "${checks[@]}" | grep -qx wrong-target; then
  case $suite in bookworm) other_suite=trixie other_distro=debian-13 ;; *) other_suite=bookworm other_distro=debian-12 ;; esac
  case $arch in amd64) other_arch=arm64 ;; *) other_arch=amd64 ;; esac
  for v in codename arch; do
    d=$R/root/e2e-wrong-$v/$name
    mkdir -p "$(dirname "$d")"
    cp -a "$R$B" "$d"
    if [ $v = codename ]; then
      sed -i -e "s/^CODENAME='[^']*'\$/CODENAME='$other_suite'/" -e "s/^DISTRO_ID='[^']*'\$/DISTRO_ID='$other_distro'/" "$d/install.sh"
    else sed -i "s/^ARCH='[^']*'\$/ARCH='$other_arch'/" "$d/install.sh"; fi
    resum "$d"
  done
  echo "$other_suite $other_arch" > "$R/opaas-e2e/wrong-target"
fi
# tampered copies of a signed bundle (made here, with the host's tools)
if printf '%s\n' "${checks[@]}" | grep -qx tamper; then
  [ -d "$R$B/archive" ] || { echo "tamper: $name is not a signed bundle (no archive/)" >&2; exit 2; }
  : > "$R/opaas-e2e/tamper"
  for v in deb index; do
    d=$R/root/e2e-tamper-$v/$name
    mkdir -p "$(dirname "$d")"
    cp -a "$R$B" "$d"
    case $v in
      deb)   # one flipped bit in the middle of the first .deb
        f=$(cd "$d" && find archive/pool -name '*.deb' | LC_ALL=C sort | head -n 1)
        perl -e 'open(my $h, "+<", $ARGV[0]) or die $!; my $at = int((-s $h) / 2); seek($h, $at, 0); read($h, my $c, 1);
                 seek($h, $at, 0); print $h chr(ord($c) ^ 1); close($h) or die $!' "$d/$f" ;;
      index) # one edited field in the first index, recompressed
        f=$(cd "$d" && find archive/dists -name 'Packages.xz' | LC_ALL=C sort | head -n 1)
        xz -dc "$d/$f" | sed '0,/^Priority: optional/s//Priority: required/' | xz -c > "$d/$f.new"
        mv "$d/$f.new" "$d/$f" ;;
    esac
    resum "$d"
    echo "$v $f" >> "$R/opaas-e2e/tamper"
  done
fi
T2=$(ts)
echo "overlay + bundle copy: $(dt "$T1" "$T2") s ($(du -sh "$R$B" | cut -f1) bundle at $B)"

# ---- 3. inside: install and check ----------------------------------------------------------
cat > "$R/opaas-e2e/inner.sh" <<'INNER'
#!/bin/bash
# runs as PID 1 of a private pid+net+mount namespace, chrooted; no network, no init
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root TERM=dumb
B=$1
E=/opaas-e2e
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts 2>/dev/null
cd /tmp || exit 1                                  # install.sh must not depend on the CWD
ts() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
result() { echo "$1 $2${3:+ - $3}" >> $E/results; echo "$1 $2${3:+ - $3}"; }
check() { if [ "$2" = 0 ]; then result PASS "$1" "${3:-}"; else result FAIL "$1" "${3:-}"; fi; }
has() { grep -qx -- "$1" $E/checks; }
status_sum() { sha256sum < /var/lib/dpkg/status | cut -c1-16; }
trace() {  # what install.sh must not change (packages may add files to /etc/apt/apt.conf.d)
  { find /etc/apt/sources.list /etc/apt/sources.list.d /var/lib/apt/lists /var/cache/apt -printf '%p %s %T@\n' 2>/dev/null | sort
    cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | sha256sum
    ls -d /tmp/opaas-install.* /usr/sbin/policy-rc.d 2>/dev/null; } | sha256sum | cut -c1-16
}
run_install() {  # NAME ARGS... ; output in $E/NAME.out, exit status in RC, seconds in SECS
  local n=$1 t; shift; t=$(ts)
  RC=0; bash "$@" > "$E/$n.out" 2>&1 </dev/null || RC=$?
  SECS=$(dt "$t" "$(ts)")
}
requested=$(sed -n "s/^REQUESTED=(\(.*\))\$/\1/p" "$B/install.sh" | tr -d "'")
bid=$(sed -n "s/^BUNDLE_ID='\(.*\)'\$/\1/p" "$B/install.sh")

if has dry-run; then
  s0=$(status_sum); t0=$(trace)
  run_install dry-run "$B/install.sh" --dry-run
  ok=1; [ "$RC" = 0 ] && [ "$(status_sum)" = "$s0" ] && [ "$(trace)" = "$t0" ] && [ ! -e /var/log/opaas ] && ok=0
  check dry-run $ok "exit $RC, $SECS s, $(grep -m1 '^dry run:' $E/dry-run.out)"
fi

if has refusals; then  # before installing: each refusal must leave the system untouched
  s0=$(status_sum)
  C=/tmp/e2e-corrupt/${B##*/}; mkdir -p /tmp/e2e-corrupt; cp -a "$B" "$C"
  deb=$(find "$C" -name '*.deb' | LC_ALL=C sort | head -n 1); printf 'X' >> "$deb"   # one byte more: a damaged copy
  run_install corrupt "$C/install.sh"
  ok=1; [ "$RC" = 4 ] && grep -q '^错误：离线包已损坏' $E/corrupt.out && [ "$(status_sum)" = "$s0" ] && ok=0
  check "refuse a corrupt bundle (exit 4)" $ok "exit $RC: $(grep -m1 '^error:' $E/corrupt.out)"
  rm -rf /tmp/e2e-corrupt
  # apt and dpkg lock with fcntl(2), which flock(1) cannot see: hold it the way apt does
  # (struct flock as on 64-bit Linux: short type, short whence, off_t start, off_t len, pid_t pid)
  perl -e 'use Fcntl; open(my $f, ">>", "/var/lib/dpkg/lock-frontend") or die $!;
           my $fl = pack("s s x4 q q i x4", F_WRLCK, 0, 0, 0, 0);
           fcntl($f, F_SETLK, $fl) or die "lock: $!"; $| = 1; print "locked\n"; sleep 60' > $E/locker.out 2>&1 &
  locker=$!
  for _ in 1 2 3 4 5 6 7 8 9 10; do grep -q locked $E/locker.out && break; sleep 0.2; done
  if grep -q locked $E/locker.out; then
    flock -n /var/lib/dpkg/lock-frontend true && echo "  (note: flock -n does not see the fcntl lock apt/dpkg use)"
    t=$(ts); RC=0; OPAAS_LOCK_WAIT=3 bash "$B/install.sh" > $E/locked.out 2>&1 </dev/null || RC=$?
    ok=1; [ "$RC" = 5 ] && grep -q 'perl' $E/locked.out && [ "$(status_sum)" = "$s0" ] && ok=0
    check "refuse while dpkg is locked (exit 5)" $ok "exit $RC after $(dt "$t" "$(ts)") s: $(grep -m1 '^error:' $E/locked.out | cut -c1-110)"
  else
    check "refuse while dpkg is locked (exit 5)" 1 "the test could not take the lock: $(cat $E/locker.out)"
  fi
  kill "$locker" 2>/dev/null; wait "$locker" 2>/dev/null
  run_install only-bad "$B/install.sh" --only no-such-package
  ok=1; [ "$RC" = 2 ] && [ "$(status_sum)" = "$s0" ] && ok=0
  check "refuse --only with a package not in the bundle (exit 2)" $ok "exit $RC"
  mkdir -p /tmp/e2e-user; cp -a "$B" /tmp/e2e-user/; chmod -R a+rX /tmp/e2e-user
  RC=0; setpriv --reuid=65534 --regid=65534 --clear-groups bash "/tmp/e2e-user/${B##*/}/install.sh" > $E/nonroot.out 2>&1 </dev/null || RC=$?
  ok=1; [ "$RC" = 3 ] && grep -q 'must be run as root' $E/nonroot.out && ok=0
  check "refuse to run as non-root (exit 3)" $ok "exit $RC"
  rm -rf /tmp/e2e-user
fi

if has tamper; then  # before installing: refused before dpkg runs, the file named
  s0=$(status_sum); l0=$(stat -c %s /var/log/dpkg.log 2>/dev/null || echo 0)
  while read -r v f; do
    run_install "tamper-$v" "/root/e2e-tamper-$v/${B##*/}/install.sh"
    ok=1; [ "$RC" = 4 ] && grep -q -F -- "$f" "$E/tamper-$v.out" && [ "$(status_sum)" = "$s0" ] \
      && [ "$(stat -c %s /var/log/dpkg.log 2>/dev/null || echo 0)" = "$l0" ] && ok=0
    check "tamper ($v: $f) refused before dpkg runs (exit 4, file named)" $ok \
      "exit $RC: $(grep -m1 '^error:' "$E/tamper-$v.out" | cut -c1-100); $(grep -F -m1 -- "$f" "$E/tamper-$v.out" | sed 's/^ *//' | cut -c1-160)"
  done < $E/tamper
fi

if has no-start; then
  run_install no-start "$B/install.sh" --no-start
  running=$(for p in /proc/[0-9]*; do cat "$p/comm" 2>/dev/null; done | grep -v -x -e bash -e inner.sh -e cat -e grep -e sort -e tr | sort -u | tr '\n' ' ')
  ok=1; [ "$RC" = 0 ] && [ -z "$running" ] && [ ! -e /usr/sbin/policy-rc.d ] && ok=0
  check no-start $ok "exit $RC, $SECS s, processes running: ${running:-none}, $(grep -c 'not started (--no-start)' $E/no-start.out) service(s) reported not started"
fi

t0=$(trace)
run_install install "$B/install.sh"
check "install: exit 0" "$RC" "exit $RC in $SECS s"
echo "---- install.sh summary ----"; sed -n '/^==== summary/,$p' $E/install.out | sed 's/^/  | /'
[ "$RC" = 0 ] || { echo "---- last lines of the install output ----"; tail -n 40 $E/install.out | sed 's/^/  | /'; }

bad=""
for p in $requested; do
  p=${p%%[=/:]*}
  s=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)
  [ "$s" = "ii " ] || bad="$bad $p(${s:-absent})"
done
check "requested packages are ii" "$([ -z "$bad" ] && echo 0 || echo 1)" "${bad:-$requested}"
if [ -d "$B/archive" ]; then  # a signed bundle: apt read it as a signed source
  src=$(grep -m1 '^source / 软件源:' $E/install.out)
  ok=1; case $src in *signed-by=/usr/share/keyrings/*) grep -q 'trusted=yes' $E/install.out || ok=0 ;; esac
  check "apt checked the distribution's signature (signed-by the target's keyring, no trusted=yes)" $ok "$(echo "$src" | sed 's/.*signed-by=/signed-by=/')"
fi
audit=$(dpkg --audit 2>&1)
check "dpkg --audit is empty" "$([ -z "$audit" ] && echo 0 || echo 1)" "$(echo "${audit:-(empty)}" | awk 'NR <= 3' | tr '\n' ' ')"
nt=""; [ "$(trace)" = "$t0" ] || nt="sources.list*, apt lists/caches, /tmp or policy-rc.d changed"
[ -s "/var/log/opaas/install-$bid.log" ] || nt="$nt; no /var/log/opaas/install-$bid.log"
check "no trace but packages and log" "$([ -z "$nt" ] && echo 0 || echo 1)" "${nt:-log /var/log/opaas/install-$bid.log}"

while read -r c; do
  case $c in
    cmd:*)
      cmd=${c#cmd:}; out=$(bash -c "$cmd" 2>&1); rc=$?
      check "$c" $rc "$(echo "$out" | head -n1)" ;;
    http:*)
      port=${c#http:}
      command -v ip >/dev/null && ip link set lo up 2>/dev/null
      line=$(timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$port"' || exit 1
                                 printf "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3; head -n1 <&3' 2>&1)
      line=${line%$'\r'}
      if [[ $line == HTTP/* ]]; then check "$c" 0 "$line"
      else
        lo=unknown
        if command -v ip >/dev/null; then ip -o link show lo | grep -q 'UP' && lo=up || lo=down
        elif [ -r /sys/class/net/lo/operstate ]; then lo=$(cat /sys/class/net/lo/operstate); fi
        check "$c" 1 "no HTTP answer on 127.0.0.1:$port (${line:-nothing}); lo is $lo"
      fi ;;
    rerun)
      s0=$(status_sum); t0=$(trace)
      run_install rerun "$B/install.sh"
      summ=$(grep -E 'newly installed / 新安装: |upgraded / 升级: ' $E/rerun.out | tr -s ' ' | paste -sd, -)
      ok=1; [ "$RC" = 0 ] && [ "$(status_sum)" = "$s0" ] && [ "$(trace)" = "$t0" ] \
        && grep -q 'newly installed / 新安装: 0$' $E/rerun.out && grep -q 'upgraded / 升级: 0$' $E/rerun.out && ok=0
      check rerun $ok "exit $RC in $SECS s, dpkg status $([ "$(status_sum)" = "$s0" ] && echo unchanged || echo CHANGED),$summ" ;;
    wrong-target)
      read -r osuite oarch < $E/wrong-target
      for v in codename arch; do
        run_install "wrong-$v" "/root/e2e-wrong-$v/${B##*/}/install.sh"
        msg=$(grep -m1 '^error: this bundle is for' "$E/wrong-$v.out")
        ok=1; [ "$RC" != 0 ] && [ -n "$msg" ] && grep -q '^错误：此离线包适用于' "$E/wrong-$v.out" && ok=0
        check "wrong-target ($v: bundle for $([ $v = codename ] && echo "$osuite" || echo "$oarch")) refused" $ok "exit $RC: ${msg:-no message}"
      done
      run_install wrong-force "/root/e2e-wrong-codename/${B##*/}/install.sh" --force
      ok=1; [ "$RC" = 0 ] && grep -q 'continuing because of --force' $E/wrong-force.out && ok=0
      check "wrong-target (codename) with --force proceeds" $ok "exit $RC" ;;
    systemd-stub)
      mkdir -p /run/systemd/system /usr/local/sbin
      cat > /usr/local/sbin/systemctl <<'STUB'
#!/bin/sh
echo "$*" >> /opaas-e2e/systemctl.calls
case $1 in
  is-enabled) for l in /etc/systemd/system/*.wants/"$2"; do [ -e "$l" ] && { echo enabled; exit 0; }; done
              echo disabled; exit 1 ;;
  is-active) echo active ;;
esac
exit 0
STUB
      chmod 755 /usr/local/sbin/systemctl
      run_install systemd-stub "$B/install.sh"
      calls=$(grep -c '^enable --now ' /opaas-e2e/systemctl.calls 2>/dev/null)
      ok=1; [ "$RC" = 0 ] && [ "${calls:-0}" -gt 0 ] && ok=0
      check systemd-stub $ok "exit $RC, systemctl calls: $(grep -e '^enable' -e '^start' /opaas-e2e/systemctl.calls 2>/dev/null | paste -sd';' -)"
      rm -rf /run/systemd/system /usr/local/sbin/systemctl ;;
  esac
done < <(grep -v -x -e dry-run -e no-start -e refusals -e tamper $E/checks)
exit 0
INNER
chmod 755 "$R/opaas-e2e/inner.sh"
: > "$R/opaas-e2e/results"
# own mount, pid and network namespace: only a loopback device, brought up here with the host's
# ip(8) when there is one (inside, the chroot may have no iproute2)
unshare --mount --net --pid --fork --mount-proc="$R/proc" /bin/sh -c "
  command -v ip >/dev/null 2>&1 && ip link set lo up
  exec chroot \"\$1\" /opaas-e2e/inner.sh \"\$2\"" sh "$R" "$B" || echo "FAIL inner script exit status $?" >> "$R/opaas-e2e/results"
T3=$(ts)
cp "$R"/opaas-e2e/*.out "$R/opaas-e2e/results" "$logdir/" 2>/dev/null || true
cp -r "$R/var/log/opaas" "$logdir/" 2>/dev/null || true
echo "upper dir (what the install added): $(du -sh "$w/upper" | cut -f1)"

# ---- 4. verdict --------------------------------------------------------------------------
npass=$(grep -c '^PASS ' "$R/opaas-e2e/results" || true)
nfail=$(grep -c '^FAIL ' "$R/opaas-e2e/results" || true)
grep '^FAIL inner' "$R/opaas-e2e/results" || true
echo "timings: chroot $(dt "$T0" "$T1") s ($chroot_state), overlay+copy $(dt "$T1" "$T2") s, install+checks $(dt "$T2" "$T3") s, total $(dt "$T0" "$(ts)") s"
echo "logs: $logdir"
if [ "$nfail" = 0 ] && [ "$npass" -gt 0 ]; then echo "RESULT: PASS ($npass checks) $name on $target"
else echo "RESULT: FAIL ($nfail of $((npass + nfail)) checks failed) $name on $target"; fi
[ "$nfail" = 0 ] && [ "$npass" -gt 0 ]     # the exit status
