#!/usr/bin/env bash
# jobs_bench.sh - the job history: GET /api/models/jobs with 10,000 finished jobs against
# baselines served by the same stack in the same run, then process memory over many
# install+delete cycles.
#
# Part 1 (list): a data root with BENCH_JOBS finished job files (job_history raised to keep
# them all) and a small gallery. wrk (-t2 -c32, alternating rounds) against
#   list      GET /api/models/jobs                             (a page of 100, newest first)
#   filtered  GET /api/models/jobs?status=failed&offset=500    (a page deep in one status)
#   health    GET /api/models/health                           (baseline: a tiny answer)
#   nomatch   GET /api/models/gallery/search?query=zzzz-none   (baseline: a search that finds nothing)
#   search    GET /api/models/gallery/search?sort=name&limit=100 (baseline: 100 whole models)
# and prints req/s, p99, answer size and the ratio to the health baseline. Target: >= 5,000
# req/s for both list pages.
#
# Part 2 (rss): a root with the default job_history (1000), a download server
# (tests/integration/dlserver.py) and one 4 KiB model; BENCH_WARM install+delete cycles, then
# the RSS (VmRSS) of mg-installer and of each mg-fcgi worker, then BENCH_CYCLES more cycles
# and the RSS again. Target: flat (+-1 MiB).
#
#   bench/jobs_bench.sh                       # both parts; deploy/up builds into build/
#   MG_BIN_DIR=build-bench bench/jobs_bench.sh
#   BENCH_PART=list|rss BENCH_SECONDS=6 BENCH_JOBS=10000 BENCH_WARM=100 BENCH_CYCLES=1000
#   BENCH_KEEP=1 keeps the temp roots (wrk outputs, logs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PART=${BENCH_PART:-all}
SECS=${BENCH_SECONDS:-6}
ROUNDS=${BENCH_ROUNDS:-3}
N_JOBS=${BENCH_JOBS:-10000}
WARM=${BENCH_WARM:-100}
CYCLES=${BENCH_CYCLES:-1000}
ROUND_SECS=$(((SECS + ROUNDS - 1) / ROUNDS))

# shellcheck source=bench/lib.sh
. "$REPO/bench/lib.sh"
bench_work_new "${TMPDIR:-/tmp}/mg-jobs-bench.XXXXXX"
WORK=$BENCH_WORK
DL_PID=""
BENCH_PID_VARS+=(DL_PID) # stopped on exit

command -v wrk >/dev/null || bench_die "wrk is missing (apt-get install wrk)"

# ---- part 1: the list ----------------------------------------------------------------

# gen_jobs ROOT N: N finished job files (one in ten failed), created a second apart.
gen_jobs() {
    python3 - "$1" "$2" <<'PY'
import json, os, sys, time
root, n = sys.argv[1], int(sys.argv[2])
os.makedirs(os.path.join(root, "jobs"), exist_ok=True)
t0 = int(time.time()) - n
for i in range(n):
    jid = "%016x" % (0x1000000000000000 + i)
    at = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t0 + i))
    failed = i % 10 == 0
    job = {"job_id": jid, "model_id": "bench-model-%d" % (i % 500), "kind": "install",
           "name": "Bench model", "url": "https://example.com/m.gguf",
           "checksum": "sha256:" + "0" * 64, "ext": ".gguf", "size": 4000000000,
           "status": "failed" if failed else "installed", "progress": 37.5 if failed else 100.0,
           "downloaded": 1500000000 if failed else 4000000000, "total": 4000000000,
           "error": "download failed: HTTP 404 from https://example.com/m.gguf" if failed else None,
           "error_code": "http_404" if failed else None, "diagnosis": None,
           "created_at": at, "updated_at": at, "created_ns": (t0 + i) * 10**9}
    with open(os.path.join(root, "jobs", jid + ".json"), "w") as f:
        json.dump(job, f, separators=(",", ":"))
PY
}

declare -A REQ SECS_SUM P99

# round KEY URL: one wrk round, summed into REQ/SECS_SUM, p99 (ms) collected.
round() {
    local out=$WORK/wrk-$1-$RANDOM.txt
    wrk -t2 -c32 -d"${ROUND_SECS}s" --timeout 10s --latency "$2" >"$out" 2>&1 || bench_die "wrk: $(cat "$out")"
    grep -q "Non-2xx" "$out" && bench_die "non-2xx answers from $2: $(cat "$out")"
    local req secs p99
    read -r req secs < <(awk '/requests in/ { s = $4; sub(/s,$/, "", s); print $1, s; exit }' "$out")
    p99=$(awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                 printf "%.2f", v * ((u == "us") ? 0.001 : (u == "s") ? 1000 : 1); exit }' "$out")
    REQ[$1]=$((${REQ[$1]:-0} + req))
    SECS_SUM[$1]=$(awk -v a="${SECS_SUM[$1]:-0}" -v b="$secs" 'BEGIN { print a + b }')
    P99[$1]="${P99[$1]:-} $p99"
}

rps() { awk -v n="${REQ[$1]}" -v s="${SECS_SUM[$1]}" 'BEGIN { printf "%.0f", n / s }'; }
p99() { tr ' ' '\n' <<<"${P99[$1]}" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

part_list() {
    local root=$WORK/list port keys key base
    port=$(bench_free_ports 1)
    mkdir -p "$root/config"
    echo "{\"job_history\": $N_JOBS}" >"$root/config/server.json"
    python3 "$REPO/bench/gen_gallery.py" 100 >"$root/config/models_gallery.json"
    bench_log "generating $N_JOBS finished jobs"
    gen_jobs "$root" "$N_JOBS"
    bench_deploy_up "$root" "$port" "$WORK/up-$port.log"
    local base_url="http://127.0.0.1:$port"
    local -A url=([list]="$base_url/api/models/jobs"
                  [filtered]="$base_url/api/models/jobs?status=failed&offset=500"
                  [health]="$base_url/api/models/health"
                  [nomatch]="$base_url/api/models/gallery/search?query=zzzz-none"
                  [search]="$base_url/api/models/gallery/search?sort=name&limit=100")
    local total
    total=$(curl -fsS "${url[list]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
    [[ $total == "$N_JOBS" ]] || bench_die "the list holds $total jobs, not $N_JOBS"
    keys=(list filtered health nomatch search)
    for key in "${keys[@]}"; do wrk -t2 -c32 -d1s "${url[$key]}" >/dev/null 2>&1; done # warm-up
    for ((r = 0; r < ROUNDS; r++)); do
        for key in "${keys[@]}"; do bench_log "round $((r + 1)): $key"; round "$key" "${url[$key]}"; done
    done
    base=$(rps health)
    printf '\nGET /api/models/jobs with %d finished jobs (wrk -t2 -c32, %d x %d s per line, alternating)\n' \
        "$N_JOBS" "$ROUNDS" "$ROUND_SECS"
    printf '%-9s %-50s %8s %7s %8s %10s\n' what url req/s p99_ms bytes vs_health
    for key in "${keys[@]}"; do
        printf '%-9s %-50s %8s %7s %8s %9sx\n' "$key" "${url[$key]#"$base_url"}" "$(rps "$key")" \
            "$(p99 "$key")" "$(curl -s "${url[$key]}" | wc -c)" \
            "$(awk -v a="$(rps "$key")" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
    done
    local ok
    ok=$(awk -v a="$(rps list)" -v b="$(rps filtered)" 'BEGIN { print (a >= 5000 && b >= 5000) ? "yes" : "NO" }')
    printf 'target >= 5000 req/s for both list pages: %s\n' "$ok"
}

# ---- part 2: memory over install+delete cycles ------------------------------------------

part_rss() {
    local root=$WORK/rss port dldir=$WORK/dl
    port=$(bench_free_ports 1)
    mkdir -p "$root/config" "$dldir"
    head -c 4096 /dev/urandom >"$dldir/m.gguf"
    python3 "$REPO/tests/integration/dlserver.py" --dir "$dldir" --port-file "$WORK/dl.port" \
        >/dev/null &
    # shellcheck disable=SC2034 # read through BENCH_PID_VARS
    DL_PID=$!
    for _ in $(seq 50); do [[ -s $WORK/dl.port ]] && break; sleep 0.1; done
    local dlport sha
    dlport=$(cat "$WORK/dl.port")
    sha=$(sha256sum "$dldir/m.gguf" | cut -d' ' -f1)
    echo '{"allow_http": true}' >"$root/config/server.json"
    printf '{"version":1,"generatedAt":"2026-01-01T00:00:00Z","models":[{"id":"rss-model","name":"RSS","checksum":"sha256:%s","downloadUrl":"http://127.0.0.1:%s/m.gguf","sizeGb":0.000004096}]}\n' \
        "$sha" "$dlport" >"$root/config/models_gallery.json"
    bench_deploy_up "$root" "$port" "$WORK/up-$port.log"
    python3 - "$root" "$port" "$WARM" "$CYCLES" <<'PY'
import http.client, json, os, sys, time
root, port, warm, cycles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def api(method, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, headers={"Content-Length": "0"} if method == "POST" else {})
    r = c.getresponse()
    body = json.loads(r.read() or b"null")
    c.close()
    return r.status, body

def cycle():
    st, body = api("POST", "/api/models/gallery/rss-model/install")
    assert st == 202, (st, body)
    while True:
        st, job = api("GET", "/api/models/jobs/" + body["job_id"])
        if job["status"] in ("installed", "failed", "cancelled"):
            break
        time.sleep(0.005)
    assert job["status"] == "installed", job
    st, _ = api("DELETE", "/api/models/rss-model")
    assert st == 200, st

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def pids():
    inst = int(open(os.path.join(root, "run", "installer.pid")).read())
    master = int(open(os.path.join(root, "run", "fcgi.pid")).read())
    workers = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                st = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == master:
                workers.append(int(d))
    return inst, sorted(workers)

def snapshot():
    inst, workers = pids()
    return {"installer": rss_kib(inst), **{f"worker {w}": rss_kib(w) for w in workers}}

t0 = time.monotonic()
for _ in range(warm):
    cycle()
before = snapshot()
t1 = time.monotonic()
for i in range(cycles):
    cycle()
after = snapshot()
t2 = time.monotonic()
jobs = len([n for n in os.listdir(os.path.join(root, "jobs")) if n.endswith(".json")])
print(f"\nprocess memory over install+delete cycles (4 KiB model, job_history 1000)")
print(f"{warm} warm-up cycles in {t1 - t0:.1f} s, then {cycles} cycles in {t2 - t1:.1f} s "
      f"({(t2 - t1) / cycles * 1000:.0f} ms per cycle); job files kept: {jobs}")
print(f"{'process':<16} {'RSS after warm-up':>18} {'RSS after cycles':>17} {'change':>10}")
worst = 0
for k in before:
    if k in after:
        d = after[k] - before[k]
        worst = max(worst, abs(d))
        print(f"{k:<16} {before[k]:>15} KiB {after[k]:>14} KiB {d:>+6} KiB")
print(f"target: flat (+-1024 KiB): {'yes' if worst <= 1024 else 'NO'} (largest change {worst} KiB)")
PY
}

case $PART in
list) part_list ;;
rss) part_rss ;;
all) part_list; part_rss ;;
*) bench_die "BENCH_PART is list, rss or all" ;;
esac
