#!/usr/bin/env bash
# bench/worst_case.sh - the cost of the worst search request the bounds allow (issue 8), side
# by side with normal searches, and health latency under a flood of worst-case searches:
#
#   CPU per request     normal text and filter searches vs the worst-case queries that pass
#                       the bounds (32 distinct terms of at most 64 bytes, built from the
#                       gallery itself so that every term matches almost every model), and the
#                       refused ones (33 terms: 400; over 8 KiB: 414), measured as utime+stime of
#                       the mg-fcgi workers over K sequential requests
#   health latency      GET /api/models/health idle vs while wrk keeps 64 connections sending
#                       the costliest worst-case search
#
# on a 250,000-model gallery (bench/gen_gallery.py). Everything runs on 127.0.0.1 in a temp
# root and is stopped by pid (deploy/down) on exit.
#
#   BENCH_MODELS=250000     gallery size          BENCH_GALLERY=FILE   use this gallery instead
#   BENCH_REQUESTS=20       requests per query    BENCH_FLOOD_SECONDS=10
#   BENCH_WORKERS=2         mg-fcgi workers       BENCH_CONNECTIONS=64 (wrk -c of the flood)
#   MG_BIN_DIR=<cmake build dir>  use that build (else deploy/up builds)
#   BENCH_KEEP=1            keep the temp root
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N_MODELS=${BENCH_MODELS:-250000}
REQUESTS=${BENCH_REQUESTS:-20}
FLOOD_SECONDS=${BENCH_FLOOD_SECONDS:-10}
WORKERS=${BENCH_WORKERS:-2}
CONNS=${BENCH_CONNECTIONS:-64}
PY=/usr/bin/python3

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"

bench_need_packages wrk python3
bench_work_new /tmp/mg-worst.XXXXXX
WORK=$BENCH_WORK
mkdir -p "$WORK/root/config"

if [[ -n ${BENCH_GALLERY:-} ]]; then
    cp "$BENCH_GALLERY" "$WORK/gallery.json"
else
    bench_log "generating a $N_MODELS-model gallery"
    "$PY" "$REPO/bench/gen_gallery.py" "$N_MODELS" >"$WORK/gallery.json"
fi
# Started on a small gallery (deploy/up waits 20 s for health, and the first health of a big
# gallery builds its index), then given the big one, which the installer picks up.
"$PY" "$REPO/bench/gen_gallery.py" 10 >"$WORK/root/config/models_gallery.json"
PORT=$(bench_free_ports 1)
bench_log "starting the stack on port $PORT ($WORKERS workers)"
bench_deploy_up "$WORK/root" "$PORT" "$WORK/up.log" MG_WORKERS="$WORKERS"
mv "$WORK/gallery.json" "$WORK/root/config/models_gallery.json"

# The measurement: one Python process (http.client, keep-alive), wrk for the flood.
"$PY" - "$WORK/root" "$PORT" "$REQUESTS" "$FLOOD_SECONDS" "$CONNS" <<'PY'
import collections, http.client, json, os, re, statistics, subprocess, sys, threading, time
root, port, k, flood_s, conns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
TCK = os.sysconf("SC_CLK_TCK")

def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)

def workers():
    master = int(open(f"{root}/run/fcgi.pid").read())
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                rest = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(rest[1]) == master:
                out.append(int(d))
    return out

def cpu(pids):
    t = 0
    for p in pids:
        try:
            rest = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            t += int(rest[11]) + int(rest[12])
        except OSError:
            pass
    return t / TCK

conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
def get(path):
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()

# The installer rebuilds the cache from the big gallery; each worker builds its index at
# its first request: wait for that, then warm up every worker, in parallel.
with open(f"{root}/config/models_gallery.json") as f:
    want = sum(1 for line in f if line.startswith('  {'))
deadline = time.monotonic() + 900
while True:
    try:
        n = json.loads(get("/api/models/health")[1])["gallery_models"]
    except (OSError, http.client.HTTPException, ValueError):
        conn.close()
        n = 0
    if n >= want or time.monotonic() > deadline:
        break
    time.sleep(1)
log(f"gallery of {n} models; loading the index in every worker")
def warm():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for _ in range(3):
        c.request("GET", "/api/models/gallery/search?limit=1"); c.getresponse().read()
ts = [threading.Thread(target=warm) for _ in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]

# Worst-case terms built from the gallery: what matches (nearly) every model.
def haystacks(limit=3000):
    with open(f"{root}/cache/gallery_cache.json") as f:
        next(f)
        for i, line in enumerate(f):
            if i >= limit or not line.startswith("{"):
                break
            m = json.loads(line.rstrip().rstrip(","))
            fields = [m.get("id"), m.get("name"), m.get("description")]
            late = (m.get("tags") or []) + (m.get("categories") or [])
            yield " ".join(str(x) for x in fields + late if x).lower(), " ".join(late).lower()

chars, words, late_words = collections.Counter(), collections.Counter(), collections.Counter()
for hay, late in haystacks():
    chars.update(set(c for c in hay if c.isalnum()))
    words.update(set(re.findall(r"[a-z0-9][a-z0-9.+_-]*", hay)))
    late_words.update(set(re.findall(r"[a-z0-9][a-z0-9.+_-]*", late)))
def q(terms):
    return "query=" + "+".join(terms)
top_chars = [c for c, _ in chars.most_common(32)]
top_words = [w for w, _ in words.most_common(32) if len(w) <= 64]
top_late = [w for w, _ in late_words.most_common(32) if len(w) <= 64]
long_terms = [(c * 64) for c in top_chars]
queries = [
    ("normal: query=qwen coder", "query=qwen+coder", False),
    ("normal: category+language+rating", "category=code&language=de&min_rating=4", False),
    ("normal: sort=name&limit=100", "sort=name&limit=100", False),
    ("worst: 32 most common characters", q(top_chars), True),
    ("worst: 32 most common words", q(top_words), True),
    ("worst: 32 most common tags/categories", q(top_late), True),
    ("worst: the 32 characters, limit=1000", q(top_chars) + "&limit=1000", True),
    ("worst: 32 terms of 64 bytes", q(long_terms), True),
    ("worst: 32 terms repeated to 8 KiB", "query=" + "+".join(top_chars * 200)[:8180], True),
    ("refused: 33 distinct terms (400)", q(top_chars + ["zz9"]), False),
    ("refused: query string over 8 KiB (414)", "query=" + "a" * 8200, False),
]

pids = workers()
rows = []
for name, qs, worst in queries:
    path = "/api/models/gallery/search?" + qs
    st, body = get(path)
    total = json.loads(body).get("total", "-") if st == 200 else "-"
    walls = []
    c0 = cpu(pids)
    for _ in range(k):
        t0 = time.monotonic()
        get(path)
        walls.append(time.monotonic() - t0)
    c1 = cpu(pids)
    rows.append((name, st, total, (c1 - c0) / k * 1000, statistics.median(walls) * 1000, worst, path))
    log(f"{name}: {rows[-1][3]:.2f} ms CPU")

base = rows[0][3] or 0.01
print("-" * 96)
print(f"CPU per search request, {n} models, {k} requests each (mg-fcgi workers' utime+stime)")
print(f"{'query':44s} {'status':>6s} {'total':>7s} {'CPU ms':>9s} {'wall ms':>9s} {'vs normal':>10s}")
for name, st, total, c, w, _, _ in rows:
    print(f"{name:44s} {st:>6d} {str(total):>7s} {c:9.2f} {w:9.2f} {c / base:9.1f}x")
worst_row = max((r for r in rows if r[5]), key=lambda r: r[3])
print(f"worst case that passes the bounds: {worst_row[0]}, {worst_row[3]:.1f} ms CPU "
      f"(target at 250,000 models: <= 50 ms)")

# Health latency, idle and during a flood of the costliest worst-case search.
def probe(seconds):
    lat = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        t0 = time.monotonic()
        c.request("GET", "/api/models/health")
        r = c.getresponse(); r.read(); c.close()
        lat.append((time.monotonic() - t0) * 1000)
        if r.status != 200:
            log(f"health answered {r.status}")
        time.sleep(0.1)
    lat.sort()
    return lat

def stats(lat):
    return (statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1])

idle = probe(min(flood_s, 5))
url = f"http://127.0.0.1:{port}{worst_row[6]}"
log(f"flood: wrk -t2 -c{conns} -d{flood_s}s on the worst case")
wrk = subprocess.Popen(["wrk", "-t2", f"-c{conns}", f"-d{flood_s}s", "--timeout", "30s", url],
                       stdout=subprocess.PIPE, text=True)
time.sleep(1)
busy = probe(max(1, flood_s - 2))
out = wrk.communicate()[0]
rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
print("-" * 96)
print(f"GET /api/models/health latency (ms), {len(idle)}/{len(busy)} probes, one connection each")
print(f"{'':44s} {'p50':>9s} {'p99':>9s} {'max':>9s}")
for label, lat in (("idle", idle), (f"flood: {conns} connections of the worst case", busy)):
    p50, p99, mx = stats(lat)
    print(f"{label:44s} {p50:9.1f} {p99:9.1f} {mx:9.1f}")
print(f"flood throughput: {rps.group(1) if rps else '?'} worst-case searches/s, "
      f"non-2xx: {non2xx.group(1) if non2xx else 0}")
print(f"ratio busy/idle health p99: {stats(busy)[1] / max(stats(idle)[1], 0.01):.1f}x")
PY
