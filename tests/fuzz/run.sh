#!/usr/bin/env bash
# tests/fuzz/run.sh - fuzzes one target (or all of them, one after the other) with libFuzzer.
#
#   tests/fuzz/run.sh TARGET [SECONDS]      TARGET: a tests/fuzz/fuzz_TARGET.c, or "all"
#
# SECONDS: per target; default $MG_FUZZ_SECONDS, else 20. Binaries: the clang build named by
# $MG_FUZZ_BIN_DIR (the test command sets it), else build-fuzz/ in the repository, configured
# (CC clang-14, -DMG_FUZZ=ON) and brought up to date first.
# Inputs: tests/fuzz/TARGET/seeds/ and .../regressions/ (read, never written) and the working
# corpus BIN/fuzz-corpus/TARGET/, which keeps growing from run to run. A crash, leak, timeout
# or broken invariant ends the run with exit 1 and the input saved under
# BIN/fuzz-crashes/TARGET/; after the fix, copy it into tests/fuzz/TARGET/regressions/ so that
# every build replays it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
    echo "usage: tests/fuzz/run.sh TARGET|all [SECONDS]" >&2
    echo "targets: $(cd "$here" && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//' | tr '\n' ' ')" >&2
    exit 2
}

(($# >= 1 && $# <= 2)) || usage
target=$1
seconds=${2:-${MG_FUZZ_SECONDS:-20}}
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "SECONDS must be a positive integer" >&2; exit 2; }

bin=${MG_FUZZ_BIN_DIR:-}
if [[ -z $bin ]]; then
    command -v clang-14 >/dev/null 2>&1 ||
        { echo "clang-14 is missing: apt-get install clang-14 libclang-rt-14-dev llvm-14" >&2; exit 1; }
    bin=$repo/build-fuzz
    # shellcheck source=deploy/lib.sh
    . "$repo/deploy/lib.sh"
    mg_build "$bin" -DCMAKE_C_COMPILER=clang-14 -DMG_FUZZ=ON
fi

# Readable stack traces when llvm-symbolizer is there.
if [[ -z ${ASAN_SYMBOLIZER_PATH:-} && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
    export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

fuzz_one() {
    local t=$1 exe=$bin/tests/fuzz/fuzz_$1 corpus=$bin/fuzz-corpus/$1 crashes=$bin/fuzz-crashes/$1
    local -a dirs=() opts=()
    [[ -f $here/fuzz_$t.c ]] || usage
    [[ -x $exe ]] || { echo "$exe is missing: is $bin a -DMG_FUZZ=ON build?" >&2; exit 1; }
    mkdir -p "$corpus" "$crashes"
    for d in "$here/$t/seeds" "$here/$t/regressions"; do
        [[ -d $d ]] && dirs+=("$d")
    done
    [[ -f $here/$t/dict ]] && opts+=("-dict=$here/$t/dict")
    echo "fuzzing $t for $seconds s (corpus $corpus)"
    # libFuzzer's progress lines and its dictionary advice are left out; the rest is shown.
    if ! "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -use_value_profile=1 \
            -print_final_stats=1 -artifact_prefix="$crashes/" "${opts[@]}" \
            "$corpus" "${dirs[@]}" 2>&1 |
            awk '/^###### Recommended dictionary/ { skip = 1 }
                 !skip && !/^#[0-9]+\t(NEW|REDUCE|pulse|RELOAD) / { print; fflush() }
                 /^###### End of recommended dictionary/ { skip = 0 }'; then
        echo "FUZZ FAILURE in $t: the input is in $crashes/ (newest file)." >&2
        echo "Replay: $exe FILE; once fixed, keep it: cp FILE $here/$t/regressions/" >&2
        return 1
    fi
}

if [[ $target == all ]]; then
    rc=0
    for src in "$here"/fuzz_*.c; do
        t=${src##*/fuzz_}
        fuzz_one "${t%.c}" || rc=1
    done
    exit $rc
fi
fuzz_one "$target"
