#!/usr/bin/env python3
"""Times uncached reads of a feedgate serving a large MariaDB database.

    bench/feeds_probe.py BASE_URL MYSQL_DATABASE [REPEATS]

Every request names a different page, cursor, article or word, so no two
requests read the same rows; the server runs with no cache tier, so every
read reaches the database. Prints one line per read kind: median, p95 and
max in milliseconds, and the target it is held to.
"""

import json
import random
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

BASE, DATABASE = sys.argv[1], sys.argv[2]
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 20
SORTS = ["-created_at", "created_at", "-updated_at", "updated_at",
         "-published_at", "published_at", "title", "-title"]
rng = random.Random(7)


def sql(query):
    out = subprocess.run(["mysql", "-uroot", "-N", "-B", DATABASE, "-e", query],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def get(path):
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(BASE + path) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    return (time.perf_counter() - started) * 1000, status, body


def measure(name, paths, target_ms, expect=(200,)):
    times = []
    for path in paths:
        ms, status, body = get(path)
        if status not in expect:
            raise SystemExit(f"{name}: {path} answered {status}: {body[:300]!r}")
        times.append(ms)
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    verdict = "ok" if p95 < target_ms else "MISSED"
    print(f"{name:<44} median {statistics.median(times):8.1f}  p95 {p95:8.1f}  "
          f"max {times[-1]:8.1f} ms   target < {target_ms} ms  {verdict}", flush=True)


published = int(sql("SELECT articles FROM feed_counts "
                    "WHERE feed_kind = 0 AND feed_id = 0 AND status = 'published'")[0][0])
max_id = int(sql("SELECT MAX(id) FROM articles")[0][0])
author = sql("SELECT username FROM users u JOIN articles a ON a.author_id = u.id LIMIT 1")[0][0]
tag = sql("SELECT label FROM feed_counts WHERE feed_kind = 2 AND status = 'published' "
          "ORDER BY articles DESC LIMIT 1")[0][0]
print(f"{published} published articles; author {author}; tag {tag}; {REPEATS} reads each")


def published_ids(count):
    """Ids of published articles spread over the whole id range (any depth)."""
    ids = []
    while len(ids) < count:
        probe = rng.randint(1, max_id)
        row = sql(f"SELECT id FROM articles WHERE id >= {probe} AND status = 'published' "
                  "ORDER BY id LIMIT 1")
        if row:
            ids.append(int(row[0][0]))
    return ids


cursors = published_ids(REPEATS * 4)
per_page = lambda: rng.choice([10, 20, 50])

measure("GET /articles (page 1)",
        [f"/api/v1/articles?per_page={n}" for n in range(1, REPEATS + 1)], 50)
measure("GET /articles?after=<id anywhere in 1M>",
        [f"/api/v1/articles?after={c}&per_page={per_page()}" for c in cursors[:REPEATS]], 50)
measure("GET /articles?page=2..100&per_page=100 (offset <= 9,900)",
        [f"/api/v1/articles?page={rng.randint(2, 100)}&per_page=100" for _ in range(REPEATS)], 50)
for sort in SORTS:
    measure(f"sort={sort}, page 1 and a deep cursor",
            [f"/api/v1/articles?sort={sort}&per_page={n}" for n in range(1, REPEATS // 2 + 1)]
            + [f"/api/v1/articles?sort={sort}&after={c}" for c in rng.sample(cursors, REPEATS // 2)],
            50)
measure(f"tag={tag}, page 1 and deep cursors (any sort)",
        [f"/api/v1/articles?tag={tag}&sort={rng.choice(SORTS)}&after={c}" for c in cursors[:REPEATS]],
        50)
measure(f"author={author}, page 1 and deep cursors (any sort)",
        [f"/api/v1/articles?author={author}&sort={rng.choice(SORTS)}&after={c}"
         for c in cursors[REPEATS:2 * REPEATS]], 50)
measure("GET /tags", [f"/api/v1/tags?per_page={n}" for n in range(1, REPEATS + 1)], 50)
words = ["cache", "latency", "server", "index", "memory", "replica", "stream", "budget",
         "fresh stale", "hot cold", "shard queue", "lease window"]
measure("q=<common word(s)>",
        [f"/api/v1/articles?q={rng.choice(words).replace(' ', '+')}&per_page={n}"
         for n in range(1, REPEATS + 1)], 200)
measure("GET /articles/{id}", [f"/api/v1/articles/{c}" for c in cursors[2 * REPEATS:3 * REPEATS]], 5)
measure("page number past the offset cap",
        [f"/api/v1/articles?page={rng.randint(101, 50000)}" for _ in range(REPEATS)], 1000,
        expect=(400,))
