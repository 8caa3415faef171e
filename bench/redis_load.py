#!/usr/bin/env python3
"""A sustained mixed load on two feedgate instances sharing one Redis.

    bench/redis_load.py WRITER_URL READER_URL REDIS_PORT SECONDS WRITES_PER_SEC

Creates 16 articles, then for SECONDS: PATCHes a random article through the
writer at WRITES_PER_SEC, and after each acknowledged write reads 16 URLs (the
articles and list pages) on both instances. Every read of the written article
after the write must show it: a read showing an older version is counted
(stale), and the time until the reader shows the new title is recorded. Prints
Redis' key count and memory as it goes.
"""

import json
import random
import statistics
import subprocess
import sys
import time
import urllib.request

WRITER, READER, REDIS_PORT = sys.argv[1], sys.argv[2], sys.argv[3]
SECONDS, RATE = float(sys.argv[4]), float(sys.argv[5])
rng = random.Random(3)


def call(base, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read() or b"null")


def redis(*args):
    out = subprocess.run(["redis-cli", "-p", REDIS_PORT, *args],
                         check=True, capture_output=True, text=True).stdout
    return out


def redis_size():
    keys = int(redis("DBSIZE").strip())
    info = redis("INFO", "memory")
    used = next(int(line.split(":")[1]) for line in info.splitlines()
                if line.startswith("used_memory:"))
    return keys, used


call(WRITER, "POST", "/api/v1/users", {"username": "loadwriter", "password": "load-password-1"})
token = call(WRITER, "POST", "/api/v1/tokens",
             {"grant_type": "password", "username": "loadwriter",
              "password": "load-password-1"})["access_token"]
ids = []
for n in range(16):
    article = call(WRITER, "POST", "/api/v1/articles",
                   {"title": f"Load {n} v0", "body": "Text.", "status": "published",
                    "tags": ["load", f"t{n % 4}"]}, token)
    ids.append(article["id"])
urls = [f"/api/v1/articles/{i}" for i in ids[:8]] + [
    "/api/v1/articles", "/api/v1/articles?tag=load", "/api/v1/articles?tag=t1",
    "/api/v1/articles?sort=-updated_at", "/api/v1/articles?author=loadwriter",
    "/api/v1/tags", "/api/v1/articles?q=load", "/api/v1/articles?per_page=5"]
for base in (WRITER, READER):
    for url in urls:
        call(base, "GET", url)

start_keys, start_bytes = redis_size()
print(f"start: {start_keys} keys, {start_bytes / 1e6:.2f} MB used", flush=True)
writes, stale, delays = 0, 0, []
versions = {i: 0 for i in ids}
started = last_report = time.time()
while time.time() - started < SECONDS:
    tick = time.time()
    article = rng.choice(ids[:8])
    versions[article] += 1
    title = f"Load {article} v{versions[article]}"
    call(WRITER, "PATCH", f"/api/v1/articles/{article}", {"title": title}, token)
    writes += 1
    waited = time.perf_counter()
    while call(READER, "GET", f"/api/v1/articles/{article}")["title"] != title:
        time.sleep(0.0005)
    delays.append((time.perf_counter() - waited) * 1000)
    for base in (WRITER, READER):
        for url in urls:
            body = call(base, "GET", url)
            if url == f"/api/v1/articles/{article}" and body["title"] != title:
                stale += 1
    if time.time() - last_report >= 10:
        keys, used = redis_size()
        print(f"{time.time() - started:5.0f} s: {writes} writes, {keys} keys, "
              f"{used / 1e6:.2f} MB used", flush=True)
        last_report = time.time()
    time.sleep(max(0.0, 1 / RATE - (time.time() - tick)))

keys, used = redis_size()
delays.sort()
print(f"end: {writes} writes in {SECONDS:.0f} s; Redis {start_keys} -> {keys} keys, "
      f"{start_bytes / 1e6:.2f} -> {used / 1e6:.2f} MB used")
print(f"reads of an older version after an acknowledged write: {stale}")
print(f"until the other instance showed the write: p50 {statistics.median(delays):.2f} ms, "
      f"p99 {delays[int(len(delays) * 0.99)]:.2f} ms, max {delays[-1]:.2f} ms")
