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
# CAP_MB (default 20), SEGMENTS (default 4), TMPDIR,
# BENCH_KEEP=1 (keeps the temp dir).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
size_mb=${SIZE_MB:-1024}
runs=${RUNS:-1}
cap_mb=${CAP_MB:-20}
segments=${SEGMENTS:-4}
bin_dir=${MG_BIN_DIR:-$repo/build-bench}

bench_build_installer "$bin_dir"

bench_work_new "${TMPDIR:-/tmp}/mg-segbench.XXXXXX"
work=$BENCH_WORK

# ---- the file and the two servers ----
mkdir -p "$work/www" "$work/nginx" "$work/out"
bench_random_file "$work/www/model.gguf" "$size_mb"
size=$BENCH_SIZE sha=$BENCH_SHA
read -r capped_port open_port <<<"$(bench_free_ports 2)"
bench_static_nginx "$work/nginx" 2 \
"    server { listen 127.0.0.1:$capped_port; root $work/www; limit_rate ${cap_mb}m; }
    server { listen 127.0.0.1:$open_port; root $work/www; }"
capped="http://127.0.0.1:$capped_port/model.gguf"
open="http://127.0.0.1:$open_port/model.gguf"
curl -s -o /dev/null "$open" # warm the page cache of the source

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
bench_installer_start "$bin_dir" "$root" "$work/installer.log"

check_installed() { # $1: model id; the installed file is checked, then removed
    bench_check_installed "$root/models/llm/$1.gguf" "$sha"
    rm -f "$root/models/llm/$1.gguf"
}

for i in $(seq "$runs"); do
    ta=$(bench_measure "$work/out/f" "curl -s -o '$work/out/f' '$capped'")
    tb=$(bench_measure "$work/out/f" "$(parallel_curl)")
    rm -f "$work/out/f"
    tc=$(bench_time_install direct "capped-$i" "$root" "$capped" "$sha" "$size"); check_installed "capped-$i"
    td=$(bench_measure "$work/out/f" "curl -s -o '$work/out/f' '$open' && sync '$work/out/f'")
    rm -f "$work/out/f"
    te=$(bench_time_install direct "open-$i" "$root" "$open" "$sha" "$size"); check_installed "open-$i"
    printf 'run %s: a %.2f  b %.2f  c %.2f  d %.2f  e %.2f s\n' \
        "$i" "$ta" "$tb" "$tc" "$td" "$te" >&2
    echo "$ta $tb $tc $td $te" >>"$work/times"
done
for k in 1 2 3 4 5; do declare "m$k=$(cut -d' ' -f$k "$work/times" | bench_median)"; done
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
