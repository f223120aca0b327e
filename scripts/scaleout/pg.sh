#!/bin/bash
# A throw-away PostgreSQL cluster for the scale-out tests (Debian's postgresql package).
#   pg.sh start DIR PORT   initdb (first time) + start on 127.0.0.1:PORT; prints the URL
#   pg.sh stop DIR         fast shutdown
#   pg.sh kill DIR         immediate shutdown (a crash)
#   pg.sh install          apt-get install postgresql when initdb is missing (CI)
# initdb refuses to run as root: as root the cluster belongs to the user `opaas-pg` (created
# when missing). Data, socket and log live in DIR.
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|kill|install DIR [PORT]}
bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(command -v initdb)"; return 0; }
  return 1
}
if [ "$cmd" = install ]; then
  if ! bindir >/dev/null; then
    apt-get update -q </dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql </dev/null
  fi
  exit 0
fi
dir=${2:?DIR}
BIN=$(bindir) || { echo "pg.sh: no PostgreSQL server (initdb) found; run 'pg.sh install'" >&2; exit 1; }
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    id opaas-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin opaas-pg
    chown -R opaas-pg: "$dir"
    setpriv --reuid=opaas-pg --regid="$(id -g opaas-pg)" --clear-groups -- "$@"
  else
    "$@"
  fi
}
case "$cmd" in
  start)
    port=${3:?PORT}
    mkdir -p "$dir"
    chmod 755 "$dir"
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      as_pg "$BIN/initdb" -D "$dir/data" -U opaas --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    as_pg "$BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "postgres://opaas@127.0.0.1:$port/postgres"
    ;;
  stop) as_pg "$BIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  kill) as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null ;;
  *) echo "pg.sh: unknown command $cmd" >&2; exit 2 ;;
esac
