#!/usr/bin/env python3
"""A minimal IPFS Pinning Service API (v1.0.0) client, standard library only, written from
the spec's request shapes: add a pin, wait for `pinned`, find it with filters, rename it
(replace), delete it. Usage: client.py BASE_URL TOKEN CID. Prints `client: ok` on success."""
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

base, token, cid = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]


def call(method, path, body=None, auth=True):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if auth:
        req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text.strip() else None
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text) if text.strip() else None


def expect(cond, what):
    if not cond:
        sys.exit("client: FAILED: " + what)


status, body = call("GET", "/pins", auth=False)
expect(status == 401 and "reason" in body["error"], f"401 without a token: {status} {body}")

status, pin = call("POST", "/pins", {"cid": cid, "name": "py-client", "meta": {"client": "python"}})
expect(status == 202, f"POST /pins: {status} {pin}")
for key in ("requestid", "status", "created", "pin", "delegates"):
    expect(key in pin, f"PinStatus has {key}: {pin}")
expect(pin["status"] in ("queued", "pinning", "pinned", "failed"), f"a spec status: {pin}")
rid = pin["requestid"]

deadline = time.time() + 240
while True:
    status, pin = call("GET", "/pins/" + rid)
    expect(status == 200, f"GET /pins/{rid}: {status} {pin}")
    if pin["status"] == "pinned":
        break
    expect(time.time() < deadline, f"pinned in time: {pin}")
    time.sleep(0.5)

query = urllib.parse.urlencode({
    "cid": cid, "name": "PY-", "match": "ipartial", "status": "pinned",
    "meta": json.dumps({"client": "python"}), "limit": 5,
})
status, results = call("GET", "/pins?" + query)
expect(status == 200 and results["count"] == 1, f"filtered list: {status} {results}")
expect(results["results"][0]["requestid"] == rid, f"the same request: {results}")

status, replaced = call("POST", "/pins/" + rid, {"cid": cid, "name": "py-client-2"})
expect(status == 202 and replaced["requestid"] != rid, f"replace: {status} {replaced}")
status, gone = call("GET", "/pins/" + rid)
expect(status == 404 and gone["error"]["reason"] == "NOT_FOUND", f"old id gone: {status} {gone}")

status, _ = call("DELETE", "/pins/" + replaced["requestid"])
expect(status == 202, f"DELETE: {status}")
status, _ = call("GET", "/pins/" + replaced["requestid"])
expect(status == 404, f"deleted: {status}")
print("client: ok")
