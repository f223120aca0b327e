"""One-shot setup of the compose profile's Garage through its admin API (v2): a layout for the
single node, the replicas' access key (imported from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)
and their bucket. Idempotent: safe to run at every `up`."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

ADMIN = os.environ.get("GARAGE_ADMIN", "http://garage:3903")
TOKEN = os.environ["GARAGE_ADMIN_TOKEN"]
KEY_ID = os.environ["AWS_ACCESS_KEY_ID"]
SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]
BUCKET = os.environ.get("OPAAS_BUCKET", "opaas")


def call(endpoint, body=None, method=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"{ADMIN}/v2/{endpoint}",
        data=data,
        method=method or ("POST" if body is not None else "GET"),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
        return json.loads(text) if text else None


for _ in range(120):
    try:
        status = call("GetClusterStatus")
        break
    except (urllib.error.URLError, ConnectionError, OSError):
        time.sleep(1)
else:
    sys.exit("garage-init: the Garage admin API did not answer")

layout = call("GetClusterLayout")
if not layout["roles"]:
    node = status["nodes"][0]["id"]
    call("UpdateClusterLayout", {"roles": [{"id": node, "zone": "dc1", "capacity": 100 * 2**30, "tags": []}]})
    call("ApplyClusterLayout", {"version": layout["version"] + 1})
    print("garage-init: layout applied")

try:
    call(f"GetKeyInfo?id={KEY_ID}")
except urllib.error.HTTPError:
    call("ImportKey", {"accessKeyId": KEY_ID, "secretAccessKey": SECRET, "name": "opaas"})
    print("garage-init: key imported")

try:
    bucket = call(f"GetBucketInfo?globalAlias={BUCKET}")
except urllib.error.HTTPError:
    bucket = call("CreateBucket", {"globalAlias": BUCKET})
    print(f"garage-init: bucket {BUCKET} created")

call("AllowBucketKey", {
    "bucketId": bucket["id"],
    "accessKeyId": KEY_ID,
    "permissions": {"read": True, "write": True, "owner": True},
})
print("garage-init: ready")
