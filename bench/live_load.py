#!/usr/bin/env python3
"""Helpers of bench/live.sh: the read mix, the steady writer, their summaries.

    live_load.py paths IDS_FILE TAGS_FILE COUNT SKEW SEED OUT_PATHS OUT_URLS PORTS
        Draws COUNT read paths, the mix of bench/live.sh:
          60% /api/v1/articles/<id>          id by Zipf(SKEW) over IDS_FILE
          20% /api/v1/articles               page 1 of the main feed
          12% /api/v1/articles?tag=<tag>     tag by Zipf(SKEW) over TAGS_FILE
           8% /api/v1/articles?after=<id>    id by Zipf(SKEW) over IDS_FILE
        IDS_FILE and TAGS_FILE list their items most popular first. Writes the
        paths to OUT_PATHS (for wrk) and, line i on port i mod len(PORTS)
        (comma-separated), full URLs to OUT_URLS (for oha). The draw is
        seeded: the same arguments give the same files.

    live_load.py write URLS USER PASSWORD RATE SECONDS IDS_FILE SKEW LOG
        Signs in as USER and PATCHes an article's summary (id by Zipf(SKEW)
        over IDS_FILE) RATE times a second for SECONDS, on a fixed schedule:
        write k is due at start + k / RATE and is sent then by one of 32
        threads (with keep-alive connections), round-robin over the
        comma-separated base URLs. A write waits only while all 32 are busy,
        so the rate holds unless writes take longer than 32 / RATE seconds;
        a late write is still sent, and its delay logged. On SIGTERM it
        stops scheduling and waits for the writes already due. No If-Match:
        the API takes an edit without one (the last write wins). Appends to
        LOG one line a write: "due_unix_s sent_unix_s status latency_ms"
        (status 0: no answer).

    live_load.py writes LOG FROM TO
        Summarises the writes due in [FROM, TO): ok (2xx answers), failed,
        latency p50 and p99 (ms, from sending), the latest one's delay from
        due to sent (ms) and their statuses; and the writes answered in the
        window per second (applied), whenever they were due. Prints
        key=value pairs.

    live_load.py oha JSON
        Summarises oha's --output-format json: achieved rps, p50, p99,
        p99.9 (ms), errors (non-2xx/3xx answers and failed requests) and
        requests, as key=value pairs.
"""

import bisect
import concurrent.futures
import http.client
import json
import random
import signal
import sys
import threading
import time
import urllib.parse


WRITERS = 32   # writes in flight at most


def zipf_cumulative(n, skew):
    total, cum = 0.0, []
    for k in range(1, n + 1):
        total += k ** -skew
        cum.append(total)
    return cum


def draw(rng, items, cum):
    return items[min(bisect.bisect_left(cum, rng.random() * cum[-1]), len(items) - 1)]


def lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def paths(ids_file, tags_file, count, skew, seed, out_paths, out_urls, ports):
    ids, tags = lines(ids_file), lines(tags_file)
    id_cum, tag_cum = zipf_cumulative(len(ids), skew), zipf_cumulative(len(tags), skew)
    rng = random.Random(seed)
    ports = ports.split(",")
    with open(out_paths, "w") as p, open(out_urls, "w") as u:
        for i in range(count):
            r = rng.random()
            if r < 0.60:
                path = f"/api/v1/articles/{draw(rng, ids, id_cum)}"
            elif r < 0.80:
                path = "/api/v1/articles"
            elif r < 0.92:
                path = f"/api/v1/articles?tag={urllib.parse.quote(draw(rng, tags, tag_cum))}"
            else:
                path = f"/api/v1/articles?after={draw(rng, ids, id_cum)}"
            p.write(path + "\n")
            u.write(f"http://127.0.0.1:{ports[i % len(ports)]}{path}\n")


def sign_in(base, user, password):
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = json.dumps({"grant_type": "password", "username": user, "password": password})
    conn.request("POST", "/api/v1/tokens", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        sys.exit(f"live_load: sign-in as {user} answered {response.status}: {data[:200]!r}")
    return json.loads(data)["access_token"]


def write(urls, user, password, rate, seconds, ids_file, skew, log):
    urls = urls.split(",")
    rate, seconds, skew = float(rate), float(seconds), float(skew)
    if rate <= 0:
        return
    token = sign_in(urls[0], user, password)
    ids = lines(ids_file)
    cum = zipf_cumulative(len(ids), skew)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out = open(log, "a", buffering=1)
    lock = threading.Lock()
    local = threading.local()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    rng = random.Random()

    def send(k, due, article):
        conns = local.__dict__.setdefault("conns", {})
        base = urls[k % len(urls)]
        body = json.dumps({"summary": f"Edited live: write {k} at {due:.3f}."})
        sent = time.time()
        status = 0
        for _ in range(2):   # once more on a connection the server closed
            conn = conns.get(base)
            if conn is None:
                url = urllib.parse.urlsplit(base)
                conn = conns[base] = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            try:
                conn.request("PATCH", f"/api/v1/articles/{article}", body, headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                break
            except (OSError, http.client.HTTPException):
                conn.close()
                del conns[base]
        latency = (time.time() - sent) * 1000
        with lock:
            out.write(f"{due:.6f} {sent:.6f} {status} {latency:.3f}\n")

    # Each write is handed to a pool when it is due: a slow answer delays
    # no later write unless every worker is busy (then the queue shows as
    # lateness, due to sent).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=WRITERS)
    start = time.time()
    for k in range(int(rate * seconds)):
        due = start + k / rate
        if stop.wait(max(0.0, due - time.time())):
            break
        pool.submit(send, k, due, draw(rng, ids, cum))
    pool.shutdown(wait=True)


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def writes(log, start, end):
    start, end = float(start), float(end)
    rows = []
    try:
        with open(log) as f:
            for line in f:
                due, sent, status, latency = line.split()
                rows.append((float(due), float(sent), int(status), float(latency)))
    except FileNotFoundError:
        pass
    answered = sum(1 for r in rows if start <= r[1] + r[3] / 1000 < end)
    rows = [r for r in rows if start <= r[0] < end]
    done = sum(1 for r in rows if 200 <= r[2] < 300)
    latencies = [r[3] for r in rows]
    late = max((r[1] - r[0]) * 1000 for r in rows) if rows else 0.0
    statuses = ",".join(f"{s}:{n}" for s, n in sorted(
        (s, sum(1 for r in rows if r[2] == s)) for s in {r[2] for r in rows})) or "-"
    print(f"ok={done} failed={len(rows) - done} wp50={percentile(latencies, 50):.1f} "
          f"wp99={percentile(latencies, 99):.1f} late={max(late, 0):.0f} "
          f"applied={answered / (end - start):.1f} statuses={statuses}")


def oha(path):
    with open(path) as f:
        report = json.load(f)
    summary = report["summary"]
    pct = report["latencyPercentiles"]
    codes = report.get("statusCodeDistribution", {})
    failed = sum(report.get("errorDistribution", {}).values())
    bad = sum(n for code, n in codes.items() if not 200 <= int(code) < 400)
    requests = sum(codes.values()) + failed

    def ms(key):
        value = pct.get(key)
        return 1000 * value if value is not None else float("nan")

    print(f"rps={summary['requestsPerSec']:.0f} p50={ms('p50'):.2f} p99={ms('p99'):.2f} "
          f"p999={ms('p99.9'):.2f} errors={bad + failed} requests={requests}")


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "paths":
        ids, tags, count, skew, seed, out_paths, out_urls, ports = args
        paths(ids, tags, int(count), float(skew), seed, out_paths, out_urls, ports)
    elif command == "write":
        write(*args)
    elif command == "writes":
        writes(*args)
    elif command == "oha":
        oha(*args)
    else:
        sys.exit(f"live_load: unknown command {command}")


if __name__ == "__main__":
    main()
