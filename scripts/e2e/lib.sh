# shellcheck shell=bash
# lib.sh - what the chroot e2e scripts share (sourced): timing, PASS/FAIL checks, the mirror of
# the host's APT sources, cached older systems and throw-away overlays.
# The script sets $top (the repository), $CACHE, $target, $suite and $arch first, and $w (its work
# directory) before it mounts an overlay; `trap cleanup EXIT` then unmounts them and removes $w.
# shellcheck disable=SC2154  # target, suite, arch and w are the sourcing script's

# the URI of the host's deb822 source whose path ends in /NAME (debian, debian-security)
host_uri() { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -E "/$1/?\$" | head -1; }
ts() { date +%s.%N; }
dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
fails=0
# check NAME RC [DETAIL]: a PASS or FAIL line; a FAIL counts in $fails
check() { if [ "$2" = 0 ]; then echo "PASS $1${3:+ - $3}"; else echo "FAIL $1${3:+ - $3}"; fails=$((fails+1)); fi; }

# old_system PKG... -> prints the path of an older $target system: minbase from the release
# pocket only, with PKG..., built once and cached under $CACHE/chroots (keyed by the package list,
# so the scripts that ask for the same list share it)
old_system() {
  local key base inc m log hook=()
  key=$(printf '%s\n' "$@" | sha256sum | cut -c1-8)
  base=$CACHE/chroots/$target-old-$key
  log=$CACHE/logs/mmdebstrap-$target-old-$key.log
  mkdir -p "$CACHE/chroots" "$CACHE/logs"
  exec 9>"$base.lock"; flock 9
  if [ "${REBUILD:-0}" = 1 ] || [ ! -e "$base/.opaas-e2e-complete" ]; then
    rm -rf "$base" "$base.tmp"
    inc=$(IFS=,; echo "apt${*:+,$*}")
    echo "building the older $target system (release pocket only, + $*) ..." >&2
    case $suite in
      noble|jammy)
        m=${OPAAS_MIRROR_UBUNTU:?set OPAAS_MIRROR_UBUNTU}
        mmdebstrap --variant=minbase --include="$inc" --mode=root --architectures="$arch" \
          --keyring="$top/keyrings/ubuntu-archive-keyring.gpg" \
          --components=main,restricted,universe,multiverse "$suite" "$base.tmp" \
          "deb $m $suite main restricted universe multiverse" >"$log" 2>&1 ;;
      *)
        m=${OPAAS_MIRROR_DEBIAN:-$(host_uri debian)}
        [ -n "$m" ] || { echo "set OPAAS_MIRROR_DEBIAN" >&2; exit 2; }
        [ "$suite" = bookworm ] && hook=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr)
        mmdebstrap --variant=minbase --include="$inc" --mode=root --architectures="$arch" "${hook[@]}" \
          "$suite" "$base.tmp" "deb $m $suite main" >"$log" 2>&1 ;;
    esac || { tail -n 30 "$log" >&2; echo "mmdebstrap failed" >&2; exit 1; }
    touch "$base.tmp/.opaas-e2e-complete"
    mv "$base.tmp" "$base"
  fi
  exec 9>&-
  echo "$base"
}

mounts=()
cleanup() {
  set +e
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $w" >&2; return; fi
  local m
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf "$w"
}
# overlay NAME LOWER: a fresh overlay of LOWER at $w/NAME/root (services may start in it: the
# policy-rc.d of the build is removed)
overlay() {
  mkdir -p "$w/$1/upper" "$w/$1/work" "$w/$1/root"
  mount -t overlay overlay -o "lowerdir=$2,upperdir=$w/$1/upper,workdir=$w/$1/work" "$w/$1/root"
  mounts+=("$w/$1/root")
  rm -f "$w/$1/root/usr/sbin/policy-rc.d"
}
