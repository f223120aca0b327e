#!/bin/bash
# A throw-away Garage (S3-compatible object store) for the scale-out tests.
#   garage.sh install            cargo install garage (only when `garage` is not on PATH)
#   garage.sh start DIR PORT     configure (first time: layout, key, bucket `opaas`) and start,
#                                S3 API on 127.0.0.1:PORT (RPC on PORT+1, admin on PORT+2);
#                                prints the AWS_* variables to export
#   garage.sh stop DIR           stops it (data kept: `start` again resumes)
set -euo pipefail
cmd=${1:?usage: garage.sh install|start|stop DIR [PORT]}
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
if [ "$cmd" = install ]; then
  command -v garage >/dev/null || cargo install garage --locked </dev/null
  exit 0
fi
dir=${2:?DIR}
command -v garage >/dev/null || { echo "garage.sh: garage is not installed; run 'garage.sh install'" >&2; exit 1; }
g() { garage -c "$dir/garage.toml" "$@"; }
case "$cmd" in
  start)
    port=${3:?PORT}
    mkdir -p "$dir"
    if [ ! -f "$dir/garage.toml" ]; then
      secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
      cat >"$dir/garage.toml" <<CONF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$((port + 1))"
rpc_public_addr = "127.0.0.1:$((port + 1))"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$((port + 2))"
CONF
    fi
    RUST_LOG=warn setsid garage -c "$dir/garage.toml" server >>"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    for _ in $(seq 1 60); do g status >/dev/null 2>&1 && break; sleep 0.5; done
    g status >/dev/null 2>&1 || { cat "$dir/server.log" >&2; exit 1; }
    if [ ! -f "$dir/key.json" ]; then
      node=$(g node id -q 2>/dev/null | head -n1 | cut -c1-64)
      g layout assign -z dc1 -c 1G "$node" >/dev/null
      g layout apply --version 1 >/dev/null
      g json-api CreateKey '{"name":"opaas"}' >"$dir/key.json.tmp"
      mv "$dir/key.json.tmp" "$dir/key.json"
      id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessKeyId"])' "$dir/key.json")
      g bucket create opaas >/dev/null
      g bucket allow --read --write --owner opaas --key "$id" >/dev/null
    fi
    # the S3 API answers once the layout is in place
    for _ in $(seq 1 60); do
      curl -s -o /dev/null "http://127.0.0.1:$port/" && break
      sleep 0.5
    done
    python3 - "$dir/key.json" "$port" <<'PY'
import json, sys
k = json.load(open(sys.argv[1]))
print(f"AWS_ACCESS_KEY_ID={k['accessKeyId']}")
print(f"AWS_SECRET_ACCESS_KEY={k['secretAccessKey']}")
print(f"AWS_ENDPOINT_URL=http://127.0.0.1:{sys.argv[2]}")
print("AWS_REGION=garage")
PY
    ;;
  stop)
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/pid"
    fi
    ;;
  *) echo "garage.sh: unknown command $cmd" >&2; exit 2 ;;
esac
