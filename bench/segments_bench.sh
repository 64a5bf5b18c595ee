#!/usr/bin/env bash
# segments_bench.sh - parallel segments: a large install against curl, side by side.
#
# A throwaway nginx on 127.0.0.1 serves one random file twice: on a port that caps every
# connection at CAP_MB MiB/s (limit_rate, default 20) and on one without a cap. Each round
# measures, in turn:
#   capped   a) curl -o f                          one stream
#            b) curl, SEGMENTS ranges at once into one file (dd seek), then sha256sum f
#            c) mg-installer, download_segments SEGMENTS (hashed, verified, fsynced, renamed)
#   uncapped d) curl -o f && sync f
#            e) mg-installer
# and prints medians with the ratios the goals name: a/c >= 3.5, c/b <= 1.3, e/d <= 1.2.
# The installer runs alone on a temp root (jobs written into its queue, as install_bench.sh
# does by default).
#
# Environment: MG_BIN_DIR (build dir with mg-installer; built into build-bench when unset),
# SIZE_MB (default 1024), RUNS (default 1: one capped single stream of 1 GiB takes 51 s),
# CAP_MB (default 20), SEGMENTS (default 4), TMPDIR.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-1}
cap_mb=${CAP_MB:-20}
segments=${SEGMENTS:-4}
bin_dir=${MG_BIN_DIR:-$repo/build-bench}

if [ ! -x "$bin_dir/mg-installer" ]; then
    cmake -S "$repo" -B "$bin_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$bin_dir" --target mg-installer -j2 >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mg-segbench.XXXXXX")
nginx_pid=""
inst_pid=""
cleanup() {
    [ -n "$inst_pid" ] && kill "$inst_pid" 2>/dev/null && wait "$inst_pid" 2>/dev/null || true
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# ---- the file and the two servers ----
mkdir -p "$work/www" "$work/nginx/tmp" "$work/out"
echo "making a ${size_mb} MiB random file..." >&2
head -c "$((size_mb * 1024 * 1024))" /dev/urandom >"$work/www/model.gguf"
size=$(stat -c %s "$work/www/model.gguf")
sha=$(openssl dgst -sha256 -r "$work/www/model.gguf" | cut -d' ' -f1)
capped_port=$(free_port)
open_port=$(free_port)
user_line=""
[ "$(id -u)" = 0 ] && user_line="user root;"
cat >"$work/nginx/nginx.conf" <<CONF
$user_line
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp; proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp; uwsgi_temp_path $work/nginx/tmp; scgi_temp_path $work/nginx/tmp;
    sendfile on; tcp_nopush on;
    server { listen 127.0.0.1:$capped_port; root $work/www; limit_rate ${cap_mb}m; }
    server { listen 127.0.0.1:$open_port; root $work/www; }
}
CONF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do [ -s "$work/nginx/nginx.pid" ] && break; sleep 0.1; done
nginx_pid=$(cat "$work/nginx/nginx.pid")
capped="http://127.0.0.1:$capped_port/model.gguf"
open="http://127.0.0.1:$open_port/model.gguf"
curl -s -o /dev/null "$open" # warm the page cache of the source

measure() { # $1: command; prints seconds
    rm -f "$work/out/f"; sync; local t0; t0=$(now)
    bash -c "$1" >/dev/null
    echo "$(now) - $t0" | bc
}

# curl with $segments ranges at once, each written at its offset of one file, then hashed.
parallel_curl() {
    local part=$(((size + segments - 1) / segments)) cmd="" i a b
    for i in $(seq 0 $((segments - 1))); do
        a=$((i * part)); b=$((a + part - 1)); [ "$b" -ge "$size" ] && b=$((size - 1))
        cmd+="curl -s -r $a-$b '$capped' | "
        cmd+="dd of='$work/out/f' bs=1M seek=$a oflag=seek_bytes conv=notrunc status=none & "
    done
    echo "${cmd} wait; sha256sum '$work/out/f'"
}

# ---- the installer on its own root ----
root="$work/root"
mkdir -p "$root/config" "$root/jobs"
printf '{"allow_http": true, "download_segments": %s}\n' "$segments" >"$root/config/server.json"
"$bin_dir/mg-installer" --root "$root" 2>"$work/installer.log" &
inst_pid=$!
for _ in $(seq 100); do [ -s "$root/run/installer.pid" ] && break; sleep 0.05; done

time_install() { # $1: model id, $2: URL; prints seconds from queued to installed
    python3 - "$root" "$1" "$2" "$sha" "$size" <<'PY'
import json, os, sys, time
root, model, url, sha, size = sys.argv[1:6]
os.sync()
t0 = time.monotonic()
jid = os.urandom(8).hex()
now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
job = {"job_id": jid, "model_id": model, "name": model, "url": url, "checksum": "sha256:" + sha,
       "ext": ".gguf", "size": int(size), "status": "queued", "progress": 0.0, "downloaded": 0,
       "total": int(size), "error": None, "created_at": now, "updated_at": now,
       "created_ns": time.time_ns()}
path = os.path.join(root, "jobs", jid + ".json")
with open(path + ".tmp", "w") as f:
    json.dump(job, f)
os.rename(path + ".tmp", path)
while True:
    try:
        with open(path) as f:
            st = json.load(f)["status"]
    except (OSError, ValueError):
        st = "?"
    if st == "installed":
        break
    if st in ("failed", "cancelled"):
        sys.exit("job " + st)
    time.sleep(0.01)
print("%.3f" % (time.monotonic() - t0))
PY
}

check_installed() { # $1: model id
    local got
    got=$(openssl dgst -sha256 -r "$root/models/llm/$1.gguf" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "installed file has the wrong digest" >&2; exit 1; }
    rm -f "$root/models/llm/$1.gguf"
}

for i in $(seq "$runs"); do
    ta=$(measure "curl -s -o '$work/out/f' '$capped'")
    tb=$(measure "$(parallel_curl)")
    rm -f "$work/out/f"
    tc=$(time_install "capped-$i" "$capped"); check_installed "capped-$i"
    td=$(measure "curl -s -o '$work/out/f' '$open' && sync '$work/out/f'")
    rm -f "$work/out/f"
    te=$(time_install "open-$i" "$open"); check_installed "open-$i"
    printf 'run %s: a %.2f  b %.2f  c %.2f  d %.2f  e %.2f s\n' \
        "$i" "$ta" "$tb" "$tc" "$td" "$te" >&2
    echo "$ta $tb $tc $td $te" >>"$work/times"
done
for k in 1 2 3 4 5; do declare "m$k=$(cut -d' ' -f$k "$work/times" | median)"; done
grep -h "installed in\|parallel segments" "$work/installer.log" |
    sed 's/^.*: \(capped\|open\)/  \1/' >&2 || true

printf '\n%s MiB over 127.0.0.1, median of %s runs, %s segments\n' "$size_mb" "$runs" "$segments"
printf 'capped at %s MiB/s per connection:\n' "$cap_mb"
printf '  a) curl -o f (one stream)                     %7.2f s\n' "$m1"
printf '  b) curl %s ranges into one file + sha256sum    %7.2f s\n' "$segments" "$m2"
printf '  c) mg-installer install                       %7.2f s\n' "$m3"
printf 'no cap:\n'
printf '  d) curl -o f && sync f                        %7.2f s\n' "$m4"
printf '  e) mg-installer install                       %7.2f s\n' "$m5"
printf 'a/c = %.2f (goal >= 3.5)   c/b = %.2f (goal <= 1.3)   e/d = %.2f (goal <= 1.2)\n' \
    "$(echo "$m1 / $m3" | bc -l)" "$(echo "$m3 / $m2" | bc -l)" "$(echo "$m5 / $m4" | bc -l)"
