#!/bin/bash
# Replays the attacks of issue 16 against `opaas serve` on 127.0.0.1 and asserts the safe answer
# to each: cross-site writes (415/403), DNS rebinding (421), output amplification (capped),
# job floods (429 + Retry-After, one bundle file for identical jobs), 40 concurrent 8 MB status
# uploads (RSS, /healthz and /metrics latency),
# upload storage (database stays small), 300 half-open connections (closed, still serving).
#
#   scripts/attack.sh
#   ATTACK_MAX_RSS_MB=600 ATTACK_HEALTHZ_MS=100 ATTACK_UPLOADS=40 scripts/attack.sh
#   ATTACK_PROFILE=release scripts/attack.sh     # the release build (the numbers of docs/BENCHMARKS.md)
#
# Hermetic like scripts/fuzz-api.sh: a signed fixture archive (crates/server/examples/
# fixture_mirror.rs) and a fresh data directory; every loop is bounded; only 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_RSS_MB=${ATTACK_MAX_RSS_MB:-600}
HEALTHZ_MS=${ATTACK_HEALTHZ_MS:-100}
UPLOADS=${ATTACK_UPLOADS:-40}
t0=$(date +%s)

# ATTACK_PROFILE=release measures the optimised build (docs/BENCHMARKS.md)
if [ "${ATTACK_PROFILE:-debug}" = release ]; then
  cargo build -q --release -p opaas
  cargo build -q --release -p opaas-server --example fixture_mirror
  bin=target/release/opaas
  fixture=target/release/examples/fixture_mirror
else
  cargo build -q -p opaas
  cargo build -q -p opaas-server --example fixture_mirror
  bin=target/debug/opaas
  fixture=target/debug/examples/fixture_mirror
fi

work=$(mktemp -d)
pids=()
# shellcheck disable=SC2317  # called by the trap
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fails=0
ok() { echo "  ok: $*"; }
bad() { echo "  FAIL: $*" >&2; fails=$((fails + 1)); }
check() { # check <what> <expected> <got>
  if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected $2, got $3"; fi
}

mkfifo "$work/fixture.in"
"$fixture" <"$work/fixture.in" >"$work/fixture.out" &
pids+=($!)
exec 3>"$work/fixture.in"
for _ in $(seq 600); do [ -s "$work/fixture.out" ] && break; kill -0 "${pids[0]}" 2>/dev/null || break; sleep 0.1; done
read -r mirror keyring <"$work/fixture.out" || true
[ -n "$mirror" ] || { echo "attack: the fixture archive did not start" >&2; exit 1; }

: >"$work/config.toml"
spid=
# start_server <data dir> [flags…]: a fresh `opaas serve` (the previous one stopped); sets url, port, spid
start_server() {
  local data=$1
  shift
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
  : >"$work/serve.out"
  OPAAS_LOG=warn "$bin" serve --listen 127.0.0.1:0 --data-dir "$data" \
    --mirror "$mirror" --security-mirror "$mirror" --keyring "$keyring" --config "$work/config.toml" \
    --min-free-bytes 0 --workers 2 "$@" >"$work/serve.out" 2>>"$work/serve.err" &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 600); do [ -s "$work/serve.out" ] && break; kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$work/serve.out")
  [ -n "$url" ] || { echo "attack: opaas serve did not start" >&2; cat "$work/serve.err" >&2; exit 1; }
  port=${url##*:}
  echo "attack: opaas serve at $url (pid $spid) $*"
}
# the default limits
start_server "$work/data"

code() { curl -s -o "$work/body" -D "$work/head" -w '%{http_code}' --max-time 120 "$@"; }
job='{"distro":"debian-12","packages":["hello"],"baseline":"none"}'
jobs_total() { curl -s "$url/api/jobs" | sed -n 's/.*"total":\([0-9]*\).*/\1/p'; }

echo "1. cross-site writes"
check "text/plain POST /api/jobs" 415 "$(code -X POST -H 'Content-Type: text/plain' --data "$job" "$url/api/jobs")"
check "form POST /api/jobs" 415 "$(code -X POST -H 'Content-Type: application/x-www-form-urlencoded' --data "$job" "$url/api/jobs")"
check "foreign Origin POST /api/jobs" 403 "$(code -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' --data "$job" "$url/api/jobs")"
check "no job was created" 0 "$(jobs_total)"
check "own Origin POST /api/jobs" 202 "$(code -X POST -H 'Content-Type: application/json' -H "Origin: $url" --data "$job" "$url/api/jobs")"
id=$(sed -n 's/.*"id":"\([0-9a-z]*\)".*/\1/p' "$work/body")
check "foreign Origin body-less cancel" 403 "$(code -X POST -H 'Origin: http://evil.example' "$url/api/jobs/$id/cancel")"
check "foreign Origin DELETE" 403 "$(code -X DELETE -H 'Origin: http://evil.example' "$url/api/jobs/$id")"

echo "2. DNS rebinding"
check "Host: rebind.evil.example GET /api/jobs" 421 "$(code -H 'Host: rebind.evil.example' "$url/api/jobs")"
check "Host: rebind.evil.example DELETE" 421 "$(code -X DELETE -H "Host: rebind.evil.example:$port" "$url/api/jobs/$id")"
check "Host: rebind.evil.example GET /" 421 "$(code -H 'Host: rebind.evil.example' "$url/")"
check "Host: localhost" 200 "$(code -H "Host: localhost:$port" "$url/api/jobs")"
check "Host: 127.0.0.1" 200 "$(code "$url/api/jobs")"

echo "3. output amplification"
long=$(head -c 100000 /dev/zero | tr '\0' x)
printf '{"distro":"%s","packages":["hello"]}' "$long" >"$work/distro.json"
c=$(code -X POST -H 'Content-Type: application/json' --data-binary @"$work/distro.json" "$url/api/resolve")
n=$(wc -c <"$work/body")
check "100 KB distro refused" 400 "$c"
[ "$n" -lt 2000 ] && ok "error body $n bytes (not reflected)" || bad "error body $n bytes"
# an 8 MB unsatisfiable status upload: installed packages that conflict with the request
awk 'BEGIN { for (i = 0; s < 8000000; i++) { t = sprintf("Package: broken%d\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nDepends: missing%d\nConflicts: hello\n\n", i, i); s += length(t); printf "%s", t } }' >"$work/broken.status"
python3 -c 'import json,sys; print(json.dumps({"distro":"debian-12","packages":["hello"],"baseline":{"status":open(sys.argv[1]).read()}}))' "$work/broken.status" >"$work/broken.json"
ids=()
for _ in 1 2 3 4 5; do
  code -X POST -H 'Content-Type: application/json' --data-binary @"$work/broken.json" "$url/api/jobs" >/dev/null
  ids+=("$(sed -n 's/.*"id":"\([0-9a-z]*\)".*/\1/p' "$work/body")")
done
for i in "${ids[@]}"; do
  for _ in $(seq 600); do
    curl -s "$url/api/jobs/$i" | grep -Eq '"state":"(failed|done|cancelled)"' && break
    sleep 0.2
  done
done
n=$(curl -s "$url/api/jobs/${ids[0]}" | wc -c)
[ "$n" -lt 8000 ] && ok "failed job with the explanation: $n bytes" || bad "failed job: $n bytes"
curl -s "$url/api/jobs/${ids[0]}" | grep -q ' more lines' && ok "explanation truncated with '… N more lines'" || bad "no '… N more' in the stored error"
n=$(curl -s "$url/api/jobs" | wc -c)
[ "$n" -lt 100000 ] && ok "default GET /api/jobs: $n bytes" || bad "GET /api/jobs: $n bytes"
n=$(curl -s "$url/api/jobs/${ids[0]}/log" | wc -c)
[ "$n" -lt 16000 ] && ok "job log: $n bytes" || bad "job log: $n bytes"

echo "4. job flood"
accepted=0
limited=0
f0=$(date +%s)
for _ in $(seq 200); do
  c=$(code -X POST -H 'Content-Type: application/json' --data "$job" "$url/api/jobs")
  case $c in
    202) accepted=$((accepted + 1)) ;;
    429) limited=$((limited + 1)); grep -qi '^retry-after: [0-9]' "$work/head" || bad "429 without Retry-After" ;;
    *) bad "flood answer $c" ;;
  esac
done
# the bucket holds 30 and refills by one every 2 s; at most 10 unfinished at a time
most=$(( 30 + ($(date +%s) - f0) / 2 + 1 ))
[ "$accepted" -le "$most" ] && [ "$limited" -ge 100 ] && ok "$accepted of 200 submissions accepted, $limited answered 429 with Retry-After" || bad "$accepted of 200 accepted (at most $most expected), $limited limited"
# identical requests share one result: once every accepted job is finished, their bundles
# are one file on disk (hard links, one inode)
unfinished() { curl -s "$url/metrics" | awk '/^opaas_jobs\{state="(queued|resolving|downloading|packing)"\}/ {n += $2} END {print n + 0}'; }
for _ in $(seq 1200); do [ "$(unfinished)" -eq 0 ] && break; sleep 0.1; done
check "unfinished jobs after the flood" 0 "$(unfinished)"
names=$(find "$work/data/bundles" -type f -name 'offline_pkg_*' | wc -l)
files=$(find "$work/data/bundles" -type f -name 'offline_pkg_*' -printf '%i\n' | sort -u | wc -l)
check "bundle files on disk for $names identical jobs" 1 "$files"

echo "6. 300 half-open connections"
fds=()
for i in $(seq 300); do
  exec {fd}<>"/dev/tcp/127.0.0.1/$port"
  fds+=("$fd")
  case $((i % 3)) in
    1) printf 'GET /api/jobs HT' >&"$fd" ;;
    2) printf 'GET /api/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a' >&"$fd" ;;
  esac
done
open_conns() { ss -Htn state established "( sport = :$port )" | wc -l; }
echo "  $(open_conns) connections established on the server side"
h0=$(date +%s)
for _ in $(seq 300); do [ "$(open_conns)" -eq 0 ] && break; sleep 0.1; done
took=$(( $(date +%s) - h0 ))
left=$(open_conns)
for fd in "${fds[@]}"; do exec {fd}>&-; done
check "server-side connections left open" 0 "$left"
[ "$took" -le 30 ] && ok "closed within ${took} s" || bad "took ${took} s"
check "still serving /healthz" 200 "$(code "$url/healthz")"

# a fresh process without per-client limits (every upload comes from 127.0.0.1)
# and time enough for all of them in a debug build
start_server "$work/data2" --rate-limit 0 --max-queued-per-client 0 --request-timeout 30m
echo "5. $UPLOADS concurrent 8 MB status uploads"
awk 'BEGIN { for (i = 0; s < 8000000; i++) { t = sprintf("Package: pkg%d\nStatus: install ok installed\nVersion: 1.0-%d\nArchitecture: amd64\nDescription: filler package number %d\n\n", i, i, i); s += length(t); printf "%s", t } }' >"$work/big.status"
python3 -c 'import json,sys; print(json.dumps({"distro":"debian-12","packages":["hello"],"baseline":{"status":open(sys.argv[1]).read()}}))' "$work/big.status" >"$work/big.json"
rss0=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$spid/status")
# ms <path> >> file: one request's time in whole milliseconds
ms() { curl -s -o /dev/null -w '%{time_total}' --max-time 10 "$url$1" | awk '{print int($1*1000)}'; }
# pct <file>: p50, p99 and max of a column of numbers
pct() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "p50 %d, p99 %d, max %d ms", v[int(NR * 0.5) + (NR * 0.5 > int(NR * 0.5))], v[int(NR * 0.99) + (NR * 0.99 > int(NR * 0.99))], v[NR] }'; }
# the same polls against the idle server first: what this machine's load alone costs
for _ in $(seq 100); do ms /healthz >>"$work/idle.ms"; sleep 0.05; done
echo "  idle server, $(cut -d' ' -f1-3 /proc/loadavg) load: /healthz $(pct "$work/idle.ms")"
up=()
for k in $(seq "$UPLOADS"); do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 1800 -X POST -H 'Content-Type: application/json' \
    --data-binary @"$work/big.json" "$url/api/resolve" >"$work/up.$k" &
  up+=($!)
done
worst=0
worstm=0
peak=0
polls=0
load0=$(cut -d' ' -f1-3 /proc/loadavg)
u0=$(date +%s)
for _ in $(seq 30000); do
  t=$(ms /healthz)
  echo "$t" >>"$work/healthz.ms"
  [ "$t" -gt "$worst" ] && worst=$t
  t=$(ms /metrics)
  echo "$t" >>"$work/metrics.ms"
  [ "$t" -gt "$worstm" ] && worstm=$t
  polls=$((polls + 1))
  r=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$spid/status")
  [ "$r" -gt "$peak" ] && peak=$r
  running=0
  for p in "${up[@]}"; do kill -0 "$p" 2>/dev/null && running=$((running + 1)); done
  [ "$running" -eq 0 ] && break
  sleep 0.05
done
wait "${up[@]}" 2>/dev/null || true
took=$(( $(date +%s) - u0 ))
hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$spid/status")
good=$(cat "$work"/up.* | grep -c '^200$' || true)
echo "  preview answers: $(sort "$work"/up.* | uniq -c | tr -s ' ' | tr '\n' ',')"
echo "  RSS before ${rss0} MB, peak sampled ${peak} MB, high-water mark ${hwm} MB; $polls polls each: /healthz $(pct "$work/healthz.ms"), /metrics $(pct "$work/metrics.ms"); $good of $UPLOADS previews answered 200 in ${took} s; load average $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
check "all previews answered" "$UPLOADS" "$good"
[ "$hwm" -lt "$MAX_RSS_MB" ] && ok "RSS high-water mark ${hwm} MB < ${MAX_RSS_MB} MB" || bad "RSS ${hwm} MB"
[ "$worst" -le "$HEALTHZ_MS" ] && ok "/healthz within ${worst} ms <= ${HEALTHZ_MS} ms" || bad "/healthz took ${worst} ms"
[ "$worstm" -le "$HEALTHZ_MS" ] && ok "/metrics within ${worstm} ms <= ${HEALTHZ_MS} ms" || bad "/metrics took ${worstm} ms"

echo "5b. uploads stay out of the database"
for _ in 1 2 3 4; do
  code -X POST -H 'Content-Type: application/json' --data-binary @"$work/big.json" "$url/api/jobs" >/dev/null
done
db=$(du -k "$work/data2/jobs.sqlite"* | awk '{s += $1} END {print int(s/1024)}')
nup=$(find "$work/data2/uploads" -type f | wc -l)
[ "$db" -lt 8 ] && ok "jobs.sqlite(+wal) ${db} MB after 4 jobs with an 8 MB upload" || bad "jobs.sqlite ${db} MB"
[ "$nup" -eq 1 ] && ok "$nup compressed upload file (shared by digest)" || bad "$nup upload files"

if grep -q " 5[0-9][0-9] " "$work/serve.err" 2>/dev/null; then
  bad "the service logged server errors"
  grep " 5[0-9][0-9] " "$work/serve.err" | head -5 >&2
fi
echo "attack: finished in $(( $(date +%s) - t0 )) s, $fails failure(s)"
[ "$fails" -eq 0 ]
