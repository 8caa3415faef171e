"""Where a request's instructions go, by component, from two callgrind
profiles of the same server that served N1 and then N2 requests (so start-up
cancels out):

    python3 bench/miss_profile.py PROFILE_N1 PROFILE_N2 REQUESTS_BETWEEN

Each function's own (self) instructions are counted to the component of its
crate: sqlx, compression, the ETag digest, JSON encoding, moka, tokio, the
HTTP stack, feedgate's own code. Shared building blocks (malloc and free,
memcpy and memset, core, alloc, std, hashbrown, bytes...) belong to no
component: their instructions are handed to their callers in proportion to
what each call cost, up the call graph, until they reach a component. So an
allocation made by sqlx counts to sqlx. Prints instructions per request for
each component, with sqlx's `Any` layer and its connection checks shown
apart, and the costliest functions by self cost.
"""

import re
import sys
from collections import defaultdict

COMPONENTS = [
    ("database driver (sqlx)", r"sqlx_core|sqlx_mysql|sqlx_sqlite"),
    ("compression (gzip, brotli)", r"brotli|brotli_decompressor|alloc_stdlib|alloc_no_stdlib|flate2|miniz_oxide|crc32fast|zlib_rs"),
    ("ETag digest", r"sha2|digest|block_buffer|xxhash_rust"),
    ("JSON encoding (serde_json)", r"serde_json|serde"),
    ("cache (moka)", r"moka|crossbeam_channel|crossbeam_epoch|crossbeam_utils|tagptr|event_listener|async_lock|quanta"),
    ("runtime (tokio)", r"tokio|mio"),
    ("HTTP (hyper, axum, tower)", r"hyper|hyper_util|axum|axum_core|tower|tower_http|tower_layer|tower_service|http|http_body|http_body_util|httparse|httpdate|matchit"),
    ("tracing and metrics", r"tracing|tracing_core|tracing_subscriber|metrics|metrics_util|metrics_exporter_prometheus|governor"),
    ("feedgate", r"feedgate"),
]
# Building blocks: their cost goes to whoever called them.
SHARED = re.compile(
    r"^(core|alloc|std|hashbrown|bytes|smallvec|compact_str|itoa|ryu|memchr|parking_lot|parking_lot_core|"
    r"lock_api|futures_util|futures_core|futures_task|pin_project_lite|once_cell|arc_swap|scopeguard|"
    r"__rustc|chrono|base64|either|indexmap|equivalent|slab|uuid|rand|rand_core|rand_chacha|ppv_lite86|"
    r"percent_encoding|form_urlencoded|serde_urlencoded|sync_wrapper|atomic_waker|dashmap|thiserror)$"
)
LIBC_SHARED = re.compile(r"mem|alloc|free|str|_int_|tcache|unlink|consolidate|__libc_malloc|cfree")


def crate_of(name):
    match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    return match.group(1) if match else None


def component_of(name, obj):
    if "libc.so" in obj or "ld-linux" in obj:
        return None if LIBC_SHARED.search(name) else "system calls and libc"
    if "vgpreload" in obj:
        return None
    crate = crate_of(name)
    if crate is None or SHARED.match(crate):
        return None
    for component, pattern in COMPONENTS:
        if re.fullmatch(pattern, crate):
            return component
    return "other crates"


def parse(path):
    """Self cost per function, and call edges caller -> callee with their
    inclusive cost (used as weights)."""
    names, objects = {}, {}
    self_cost = defaultdict(int)
    edges = defaultdict(int)
    current_obj = current_fn = callee = callee_obj = None
    pending_call = False

    def named(table, ref):
        match = re.match(r"\((\d+)\)(?: (.*))?", ref)
        if not match:
            return ref
        key, name = match.group(1), match.group(2)
        if name is not None:
            table[key] = name
        return table.get(key, key)

    obj_names, fn_names = {}, {}
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("ob="):
            current_obj = named(obj_names, line[3:])
        elif line.startswith("fn="):
            current_fn = named(fn_names, line[3:])
            objects.setdefault(current_fn, current_obj or "")
        elif line.startswith("cob="):
            callee_obj = named(obj_names, line[4:])
        elif line.startswith("cfn="):
            callee = named(fn_names, line[4:])
        elif line.startswith("calls="):
            pending_call = True
        elif line and (line[0].isdigit() or line[0] in "+-*"):
            cost = int(line.split()[-1])
            if pending_call:
                edges[(current_fn, callee)] += cost
                objects.setdefault(callee, callee_obj or current_obj or "")
                pending_call = False
                callee_obj = None
            else:
                self_cost[current_fn] += cost
        elif line.startswith(("cfi=", "cfl=")):
            pass
    return self_cost, edges, objects


def components(path):
    self_cost, edges, objects = parse(path)
    callers = defaultdict(list)
    for (caller, callee), cost in edges.items():
        callers[callee].append((caller, cost))
    totals = defaultdict(float)
    detail = defaultdict(float)

    def credit(fn, cost, unowned):
        """Counts `cost` to `fn`'s component, or leaves it in `unowned`."""
        component = component_of(fn, objects.get(fn, ""))
        if component is None:
            unowned[fn] += cost
            return
        totals[component] += cost
        if component.startswith("database"):
            detail_of(fn, cost, detail)

    mass = defaultdict(float)
    for fn, cost in self_cost.items():
        credit(fn, cost, mass)
    # Hand shared functions' cost up to their callers, in proportion.
    for _ in range(60):
        moved = defaultdict(float)
        for fn, amount in mass.items():
            if amount <= 0:
                continue
            incoming = [(c, w) for c, w in callers.get(fn, []) if c != fn and w > 0]
            weight = sum(w for _, w in incoming)
            if weight == 0:
                totals["unattributed"] += amount
                continue
            for caller, w in incoming:
                credit(caller, amount * w / weight, moved)
        mass = moved
    totals["unattributed"] += sum(mass.values())
    return totals, detail, self_cost


def detail_of(fn, cost, detail):
    if re.search(r"::any::|AnyRow|AnyValue|AnyConnection|AnyArguments|AnyTypeInfo|Any>", fn):
        detail["of which the Any layer (AnyRow, AnyValue, AnyArguments)"] += cost
    if re.search(r"ping|return_to_pool|check_idle_conn", fn):
        detail["of which connection checks (ping on acquire and release)"] += cost


def main():
    first, second, requests = sys.argv[1], sys.argv[2], int(sys.argv[3])
    (t1, d1, s1), (t2, d2, s2) = components(first), components(second)
    rows = sorted(((t2[k] - t1.get(k, 0)) / requests, k) for k in t2)
    total = sum(cost for cost, _ in rows)
    print(f"{'instructions per request':>26}  {total:10.0f}")
    for cost, name in reversed(rows):
        if abs(cost) < 50:
            continue
        print(f"{name:>50}  {cost:10.0f}  {100 * cost / total:5.1f}%")
        if name.startswith("database"):
            for key in sorted(d2):
                value = (d2[key] - d1.get(key, 0)) / requests
                print(f"{key:>70}  {value:10.0f}")
    print("costliest functions, self cost per request:")
    own = sorted(((s2[f] - s1.get(f, 0)) / requests, f) for f in s2)
    for cost, name in reversed(own[-12:]):
        print(f"{cost:10.0f}  {name[:140]}")


if __name__ == "__main__":
    main()
