#!/bin/bash
# make-test-bundle.sh - build an offline bundle directory (and its .tar.gz) by hand, the way
# `opaas build` will, so install.sh.j2 / README.txt.j2 can be tested end to end before the
# bundle crate is wired into the CLI.
#
# usage: scripts/e2e/make-test-bundle.sh [--no-recommends] [--status FILE] [--no-tar] TARGET OUTDIR PKG...
#   TARGET   SUITE-ARCH as in the oracle kit (bookworm-amd64, bullseye-amd64, noble-amd64, ...)
#   OUTDIR   where offline_pkg_<distro>_<arch>_<id>/ and its .tar.gz are written
#   --status FILE   baseline dpkg status for the resolution (default: the oracle's status/TARGET.status)
# What it does: the real apt resolves and downloads the closure (../shared/oracle/apt-oracle.sh
# --download, mirrors from OPAAS_MIRROR_* or the host's APT sources), apt-ftparchive writes the
# flat repo (Packages, Packages.gz, Release), then manifest.json, install.sh and README.txt
# (rendered from crates/bundle/templates with render-template.sh), build.log and SHA256SUMS.
# The last line on stdout is the bundle directory.
# env: OPAAS_SHARED (default: <repo root>/../shared), ORACLE_WORK (apt-oracle's private roots)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(git -C "$here" rev-parse --show-toplevel)
SHARED=${OPAAS_SHARED:-$top/../shared}
ORACLE=$SHARED/oracle/apt-oracle.sh
TEMPLATES=$top/crates/bundle/templates

rec=() recommends=true status=() tar=1
while [ $# -gt 0 ]; do
  case $1 in
    --no-recommends) rec=(--no-recommends); recommends=false; shift ;;
    --status) status=(--status "$(realpath "$2")"); shift 2 ;;
    --no-tar) tar=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] || { sed -n '6,10p' "$0" >&2; exit 2; }
target=$1 outdir=$2; shift 2
request=("$@")
suite=${target%-*} arch=${target##*-}
case $suite in
  bookworm) os_id=debian distro_id=debian-12 ;;
  bullseye) os_id=debian distro_id=debian-11 ;;
  trixie)   os_id=debian distro_id=debian-13 ;;
  noble)    os_id=ubuntu distro_id=ubuntu-24.04 ;;
  jammy)    os_id=ubuntu distro_id=ubuntu-22.04 ;;
  *) echo "unknown suite $suite" >&2; exit 2 ;;
esac
[ -x "$ORACLE" ] || { echo "oracle kit not found: $ORACLE (set OPAAS_SHARED)" >&2; exit 2; }
command -v apt-ftparchive >/dev/null || { echo "apt-ftparchive missing: apt-get install apt-utils" >&2; exit 2; }
mkdir -p "$outdir"; outdir=$(realpath "$outdir")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s.%N)
log() { printf '%s\n' "$*" | tee -a "$work/build.log" >&2; }
log "# make-test-bundle.sh $target ${rec[*]} ${request[*]}  ($(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
log "# resolver: the real apt (apt-oracle.sh), baseline ${status[1]:-oracle status/$target.status}"

# 1. resolve + download with the real apt
rc=0
"$ORACLE" "${rec[@]}" "${status[@]}" --with-arch --download "$work/debs" "$target" "${request[@]}" \
  >"$work/resolved" 2>"$work/oracle.err" || rc=$?
cat "$work/oracle.err" >> "$work/build.log"
[ "$rc" = 0 ] || { cat "$work/oracle.err" >&2; echo "apt-oracle.sh failed ($rc)" >&2; exit 1; }
{ echo "# resolved (name:arch=version):"; cat "$work/resolved"; } >> "$work/build.log"
t1=$(date +%s.%N)

# 2. the flat repository
mkdir -p "$work/b/repo"
n_debs=0
for f in "$work"/debs/*.deb; do mv "$f" "$work/b/repo/"; n_debs=$((n_debs + 1)); done
n_res=$(wc -l < "$work/resolved")
[ "$n_debs" = "$n_res" ] || { echo "downloaded $n_debs .debs but apt resolved $n_res packages" >&2; exit 1; }
(
  cd "$work/b/repo"
  ftp=(-o APT::FTPArchive::MD5=false -o APT::FTPArchive::SHA1=false -o APT::FTPArchive::SHA512=false)
  apt-ftparchive "${ftp[@]}" packages . > Packages 2>>"$work/build.log"
  gzip -9n < Packages > Packages.gz
  apt-ftparchive "${ftp[@]}" \
    -o APT::FTPArchive::Release::Origin=OPaaS \
    -o "APT::FTPArchive::Release::Label=OPaaS offline bundle (e2e)" \
    -o APT::FTPArchive::Release::Suite=opaas-e2e \
    -o APT::FTPArchive::Release::Codename="$suite" \
    -o APT::FTPArchive::Release::Architectures="$arch" \
    -o "APT::FTPArchive::Release::Description=offline bundle for $distro_id $arch" \
    release . > "$work/Release" 2>>"$work/build.log"
  mv "$work/Release" Release
)

# 3. facts for the templates and the manifest
# one line per package: name version arch size sha256 filename installed-size
awk -v RS='' -F'\n' '{
    for (i = 1; i <= NF; i++) { split($i, kv, ": "); f[kv[1]] = substr($i, length(kv[1]) + 3) }
    fn = f["Filename"]; sub(/^\.\//, "", fn)
    print f["Package"], f["Version"], f["Architecture"], f["Size"], f["SHA256"], fn, (f["Installed-Size"] == "" ? 0 : f["Installed-Size"])
    delete f
  }' "$work/b/repo/Packages" | LC_ALL=C sort > "$work/pkgs"
package_count=$(wc -l < "$work/pkgs")
download_size=$(awk '{ s += $4 } END { print s + 0 }' "$work/pkgs")
installed_size_kb=$(awk '{ s += $7 } END { print s + 0 }' "$work/pkgs")
q() { local x out=""; for x in "$@"; do out+="${out:+ }'${x//\'/\'\\\'\'}'"; done; printf '%s' "$out"; }
mapfile -t names < <(awk '{ print $1 }' "$work/pkgs")
id=$( { echo "$target $recommends"; printf '%s\n' "${request[@]}"; cat "$work/resolved"; } | sha256sum | cut -c1-8)
created=$(date -u '+%a, %d %b %Y %H:%M:%S UTC')
tool_version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$top/Cargo.toml" | head -n1)+e2e"
name="offline_pkg_${distro_id}_${arch}_${id}"

# pocket of each package, from the oracle's private apt root (best effort)
ORACLE_WORK=${ORACLE_WORK:-${TMPDIR:-/tmp}/opaas-oracle}
: > "$work/pockets"
if [ -r "$ORACLE_WORK/roots/$target/apt.conf" ]; then
  APT_CONFIG=$ORACLE_WORK/roots/$target/apt.conf apt-cache madison "${names[@]}" 2>/dev/null |
    awk -F' [|] ' '{ gsub(/ /, "", $1); gsub(/ /, "", $2); n = split($3, w, " "); print $1, $2, w[2] }' > "$work/pockets" || true
fi

# 4. manifest.json (names and versions are [A-Za-z0-9.+~:-], nothing to escape)
{
  printf '{\n  "format": 1,\n  "id": "%s",\n  "tool": "opaas %s",\n  "created": "%s",\n' "$id" "$tool_version" "$created"
  printf '  "distro": {"id": "%s", "os_id": "%s", "codename": "%s"},\n  "arch": "%s",\n' "$distro_id" "$os_id" "$suite" "$arch"
  printf '  "request": ['; sep=""; for r in "${request[@]}"; do printf '%s"%s"' "$sep" "$r"; sep=", "; done; printf '],\n'
  printf '  "options": {"recommends": %s, "baseline": "%s"},\n' "$recommends" "${status[1]:-minimal}"
  printf '  "package_count": %s,\n  "download_size": %s,\n  "installed_size_kb": %s,\n  "packages": [\n' \
    "$package_count" "$download_size" "$installed_size_kb"
  sep=""
  while read -r p v a s h f isz; do
    pocket=$(awk -v p="$p" -v v="$v" '$1 == p && $2 == v { print $3; exit }' "$work/pockets")
    why=dependency
    for r in "${request[@]}"; do r=${r%%[=/:]*}; [ "$r" = "$p" ] && why=requested; done
    printf '%s    {"name": "%s", "version": "%s", "arch": "%s", "size": %s, "sha256": "%s", "filename": "%s", "pocket": "%s", "why": "%s", "installed_size_kb": %s}' \
      "$sep" "$p" "$v" "$a" "$s" "$h" "$f" "$pocket" "$why" "$isz"
    sep=$',\n'
  done < "$work/pkgs"
  printf '\n  ]\n}\n'
} > "$work/b/manifest.json"
if command -v jq >/dev/null; then jq -e . "$work/b/manifest.json" >/dev/null || { echo "manifest.json is not valid JSON" >&2; exit 1; }; fi

# 5. install.sh and README.txt
vars=(bundle_id="$id" distro_id="$distro_id" os_id="$os_id" codename="$suite" arch="$arch"
      requested="$(q "${request[@]}")" packages="$(q "${names[@]}")" recommends="$recommends"
      installed_size_kb="$installed_size_kb" download_size="$download_size" package_count="$package_count"
      tool_version="$tool_version" created="$created")
"$here/render-template.sh" -q -o "$work/b/install.sh" "$TEMPLATES/install.sh.j2" "${vars[@]}"
"$here/render-template.sh" -q -o "$work/b/README.txt" "$TEMPLATES/README.txt.j2" "${vars[@]}"
chmod 0755 "$work/b/install.sh"
bash -n "$work/b/install.sh"
t2=$(date +%s.%N)
log "# $package_count packages, download $download_size bytes, installed $installed_size_kb KiB; id $id"
log "# timings: resolve+download $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s, repo+render $(awk "BEGIN{printf \"%.1f\", $t2 - $t1}") s"
cp "$work/build.log" "$work/b/build.log"

# 6. SHA256SUMS over every other file, relative paths
( cd "$work/b" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum ) > "$work/SHA256SUMS"
mv "$work/SHA256SUMS" "$work/b/SHA256SUMS"

rm -rf "${outdir:?}/$name" "$outdir/$name.tar.gz"
mv "$work/b" "$outdir/$name"
chmod 0755 "$outdir/$name"
if [ "$tar" = 1 ]; then
  tar -C "$outdir" --sort=name --owner=0 --group=0 --numeric-owner -czf "$outdir/$name.tar.gz" "$name"
  echo "tarball: $outdir/$name.tar.gz ($(du -h "$outdir/$name.tar.gz" | cut -f1))" >&2
fi
echo "bundle: $package_count packages, $(awk "BEGIN{printf \"%.1f\", $download_size/1048576}") MiB, built in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}") s" >&2
echo "$outdir/$name"
