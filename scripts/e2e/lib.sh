# shellcheck shell=bash
# lib.sh - what the chroot e2e scripts share (sourced): timing, PASS/FAIL checks, the mirror of
# the host's APT sources, cached minbase systems (current and older) and throw-away overlays.
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

# cached_chroot DIR INCLUDE POCKET... -> prints "built" or "cached": a minbase system of $target
# at DIR with the packages INCLUDE (comma-separated, apt at least) and POCKET... as its sources
# ("" the release, -updates, -security), built once with mmdebstrap (merged-usr hook for bookworm,
# like the oracle's make-status.sh) and reused while DIR/.opaas-e2e-complete exists; REBUILD=1
# builds it again. Mirrors: OPAAS_MIRROR_DEBIAN / OPAAS_SECURITY_MIRROR_DEBIAN (default: the host's
# APT sources), OPAAS_MIRROR_UBUNTU / OPAAS_SECURITY_MIRROR_UBUNTU.
cached_chroot() {
  local dir=$1 inc=$2 log m s p comps opts=() src=() state=cached
  shift 2
  log=$CACHE/logs/mmdebstrap-$(basename "$dir").log
  mkdir -p "$(dirname "$dir")" "$CACHE/logs"
  exec 9>"$dir.lock"; flock 9
  if [ "${REBUILD:-0}" = 1 ] || [ ! -e "$dir/.opaas-e2e-complete" ]; then
    state=built
    rm -rf "$dir" "$dir.tmp"
    echo "building the $target system $(basename "$dir") (minbase + $inc; pockets: $(printf '%s ' "${@/#/$suite}")) ..." >&2
    case $suite in
      noble|jammy)
        m=${OPAAS_MIRROR_UBUNTU:?set OPAAS_MIRROR_UBUNTU}; s=${OPAAS_SECURITY_MIRROR_UBUNTU:-$m}
        comps=(main restricted universe multiverse)
        opts=(--keyring="$top/keyrings/ubuntu-archive-keyring.gpg" "--components=main,restricted,universe,multiverse") ;;
      *)
        m=${OPAAS_MIRROR_DEBIAN:-$(host_uri debian)}; s=${OPAAS_SECURITY_MIRROR_DEBIAN:-$(host_uri debian-security)}
        comps=(main)
        [ "$suite" = bookworm ] && opts=(--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr) ;;
    esac
    [ -n "$m" ] || { echo "set OPAAS_MIRROR_DEBIAN" >&2; exit 2; }
    for p in "$@"; do
      case $p in
        -security) [ -n "$s" ] || { echo "set the security mirror (OPAAS_SECURITY_MIRROR_DEBIAN)" >&2; exit 2; }
                   src+=("deb $s $suite$p ${comps[*]}") ;;
        *) src+=("deb $m $suite$p ${comps[*]}") ;;
      esac
    done
    mmdebstrap --variant=minbase --include="$inc" --mode=root --architectures="$arch" "${opts[@]}" \
      "$suite" "$dir.tmp" "${src[@]}" >"$log" 2>&1 \
      || { tail -n 30 "$log" >&2; echo "mmdebstrap failed" >&2; exit 1; }
    touch "$dir.tmp/.opaas-e2e-complete"
    mv "$dir.tmp" "$dir"
  fi
  exec 9>&-
  echo "$state"
}

# old_system PKG... -> prints the path of an older $target system: minbase from the release
# pocket only, with PKG..., cached under $CACHE/chroots by the package list (so the scripts that
# ask for the same list share it)
old_system() {
  local base
  base=$CACHE/chroots/$target-old-$(printf '%s\n' "$@" | sha256sum | cut -c1-8)
  cached_chroot "$base" "$(IFS=,; echo "apt${*:+,$*}")" "" >/dev/null
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
