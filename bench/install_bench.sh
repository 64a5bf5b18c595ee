#!/usr/bin/env bash
# install_bench.sh - how long installing a 1 GiB model takes, next to its physical bounds.
#
# Serves a random file with a throwaway nginx on 127.0.0.1 (free port, own temp prefix) and
# measures, RUNS times each (median printed):
#   a) curl -o f && sync f        the bound for a durable download
#   b) curl -o f && sha256sum f   download, then hash (what overlapping must beat)
#   c) mg-installer               from the job appearing in the queue until it reads installed
#                                 (hashed, verified, fsynced, renamed, registered)
# With MG_BENCH_STACK=1 and deploy/up present, (c) goes through the whole stack instead: POST
# /api/models/gallery/{id}/install, then GET /api/models/jobs/{id} until installed.
#
# Environment: MG_BIN_DIR (build dir with mg-installer; built into build-bench when unset),
# SIZE_MB (default 1024), RUNS (default 3), TMPDIR.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-3}
bin_dir=${MG_BIN_DIR:-$repo/build-bench}

if [ ! -x "$bin_dir/mg-installer" ]; then
    cmake -S "$repo" -B "$bin_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bin_dir" --target mg-installer -j"$(nproc)" >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mg-bench.XXXXXX")
chmod 711 "$work" # deploy/up as root runs the stack as its service user, which passes here
nginx_pid=""
inst_pid=""
cleanup() {
    [ -n "$inst_pid" ] && kill "$inst_pid" 2>/dev/null && wait "$inst_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    if [ "${MG_BENCH_STACK:-0}" = 1 ] && [ -x "$repo/deploy/down" ]; then
        MG_ROOT="$work/root" "$repo/deploy/down" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the file and the server ----
mkdir -p "$work/www" "$work/nginx/tmp" "$work/out"
echo "making a ${size_mb} MiB random file..." >&2
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/www/model.gguf"
size=$(stat -c %s "$work/www/model.gguf")
sha=$(openssl dgst -sha256 -r "$work/www/model.gguf" | cut -d' ' -f1)
port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
    sendfile on; tcp_nopush on;
    server { listen 127.0.0.1:$port; root $work/www; }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$work/nginx/nginx.pid")
url="http://127.0.0.1:$port/model.gguf"
curl -s -o /dev/null "$url" # warm the page cache of the source

# ---- a) and b) ----
measure() { # $1: command; prints seconds
    rm -f "$work/out/f"; sync; local t0; t0=$(now)
    bash -c "$1" >/dev/null
    echo "$(now) - $t0" | bc
}

# ---- c) the installer ----
root="$work/root"
mkdir -p "$root/config" "$root/jobs"
echo '{"allow_http": true, "max_parallel_downloads": 2}' >"$root/config/server.json"
gallery_model() { # $1: id
    printf '{"id":"%s","name":"Bench %s","checksum":"sha256:%s","downloadUrl":"%s","sizeGb":%s,"sizeBytes":%s}' \
        "$1" "$1" "$sha" "$url" "$(echo "scale=6; $size/1000000000" | bc)" "$size"
}
{
    printf '{"version":"bench","generatedAt":"2026-01-01T00:00:00Z","models":['
    for i in $(seq "$runs"); do [ "$i" -gt 1 ] && printf ','; gallery_model "bench-$i"; done
    printf ']}\n'
} >"$root/config/models_gallery.json"

# One install, timed by one python process (spawning a poller per check would steal CPU
# from the install on a small machine). $1: "direct" or "stack"; $2: model id; $3: the root
# or the API port. Prints seconds.
time_install() {
    python3 - "$1" "$2" "$3" "$url" "$sha" "$size" <<'PY'
import http.client, json, os, sys, time
mode, model, where, url, sha, size = sys.argv[1:7]
def api(method, path):
    c = http.client.HTTPConnection("127.0.0.1", int(where), timeout=30)
    c.request(method, path); r = c.getresponse(); body = json.loads(r.read()); c.close()
    return body
os.sync()
t0 = time.monotonic()
if mode == "direct":
    jid = os.urandom(8).hex()
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    job = {"job_id": jid, "model_id": model, "name": model, "url": url, "checksum": "sha256:" + sha,
           "ext": ".gguf", "size": int(size), "status": "queued", "progress": 0.0, "downloaded": 0,
           "total": int(size), "error": None, "created_at": now, "updated_at": now,
           "created_ns": time.time_ns()}
    path = os.path.join(where, "jobs", jid + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(job, f)
    os.rename(path + ".tmp", path)
    def status():
        try:
            with open(path) as f:
                return json.load(f)["status"]
        except (OSError, ValueError):
            return "?"
else:
    jid = api("POST", "/api/models/gallery/%s/install" % model)["job_id"]
    def status():
        return api("GET", "/api/models/jobs/" + jid)["status"]
while True:
    st = status()
    if st == "installed":
        break
    if st in ("failed", "cancelled"):
        sys.exit("job " + st)
    time.sleep(0.01)
print("%.3f" % (time.monotonic() - t0))
PY
}

if [ "${MG_BENCH_STACK:-0}" = 1 ] && [ -x "$repo/deploy/up" ]; then
    api_port=$(free_port)
    MG_ROOT="$root" MG_PORT="$api_port" MG_BIN_DIR="$bin_dir" "$repo/deploy/up" >&2
    mode=stack where=$api_port
else
    "$bin_dir/mg-installer" --root "$root" 2>"$work/installer.log" &
    inst_pid=$!
    for _ in $(seq 100); do [ -s "$root/run/installer.pid" ] && break; sleep 0.05; done
    mode=direct where=$root
fi
# Rounds of a, b, c side by side, so that the load of the machine and the state of the disk
# weigh on all three alike. Each installed file is checked, then removed (as the curl
# outputs are) so that every run writes to the same kind of free space.
for i in $(seq "$runs"); do
    ta=$(measure "curl -s -o '$work/out/f' '$url' && sync '$work/out/f'")
    tb=$(measure "curl -s -o '$work/out/f' '$url' && sha256sum '$work/out/f'")
    rm -f "$work/out/f"
    tc=$(time_install "$mode" "bench-$i" "$where")
    got=$(openssl dgst -sha256 -r "$root/models/llm/bench-$i.gguf" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "installed file has the wrong digest" >&2; exit 1; }
    if [ "$mode" = stack ]; then
        curl -s -o /dev/null -X DELETE "http://127.0.0.1:$api_port/api/models/bench-$i"
    else
        rm -f "$root/models/llm/bench-$i.gguf"
    fi
    printf 'run %s: a %.2f s  b %.2f s  c %.2f s\n' "$i" "$ta" "$tb" "$tc" >&2
    echo "$ta $tb $tc" >>"$work/times"
done
a=$(cut -d' ' -f1 "$work/times" | median)
b=$(cut -d' ' -f2 "$work/times" | median)
c=$(cut -d' ' -f3 "$work/times" | median)
[ -s "$work/installer.log" ] && grep -h "installed in" "$work/installer.log" | sed 's/^.*: bench/  bench/' >&2 || true

printf '\n%s MiB over 127.0.0.1, median of %s runs\n' "$size_mb" "$runs"
printf '  a) curl -o f && sync f        %6.2f s\n' "$a"
printf '  b) curl -o f && sha256sum f   %6.2f s\n' "$b"
printf '  c) mg-installer install       %6.2f s\n' "$c"
printf '  c/a = %.2f (target <= 1.2)   c/b = %.2f\n' "$(echo "$c / $a" | bc -l)" "$(echo "$c / $b" | bc -l)"
