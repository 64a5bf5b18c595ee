# shellcheck shell=bash
# deploy/lib.sh - helpers shared by deploy/up, deploy/down and tests/run (sourced, not run).
#
# mg_need_packages  installs the Debian packages the build and the stack need when any is missing
# mg_build DIR ARGS configures and builds the CMake tree into DIR (extra cmake ARGS allowed)
# mg_stop_root ROOT stops the processes named by ROOT/run/{installer,fcgi,nginx}.pid

MG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MG_PACKAGES=(libfcgi-dev libjansson-dev libcurl4-openssl-dev libssl-dev nginx libnginx-mod-nchan
             cmake pkg-config gcc libc6-dev make python3 ca-certificates)

mg_log() { printf '%s\n' "$*" >&2; }
mg_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Prints the packages of MG_PACKAGES that dpkg does not report as installed (one dpkg call).
mg_missing_packages() {
    local installed p
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${MG_PACKAGES[@]}" 2>/dev/null |
                awk '$2 == "install" && $3 == "ok" && $4 == "installed" { print $1 }' || true)
    for p in "${MG_PACKAGES[@]}"; do
        grep -qxF "$p" <<<"$installed" || printf '%s\n' "$p"
    done
}

mg_need_packages() {
    command -v dpkg-query >/dev/null 2>&1 || mg_die "dpkg-query not found: this expects Debian 12 (or install: ${MG_PACKAGES[*]})"
    local missing
    missing=$(mg_missing_packages | tr '\n' ' ')
    [[ -z ${missing// /} ]] && return 0
    if [[ $(id -u) -ne 0 ]]; then
        mg_die "missing Debian packages: $missing- run as root, or: sudo apt-get install -y $missing"
    fi
    mg_log "installing Debian packages: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null || mg_die "apt-get update failed"
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing </dev/null || mg_die "apt-get install failed"
    # Debian's nginx package may start the system nginx (port 80); ours run beside it, each
    # with its own configuration, so it is left as the system has it.
}

# mg_build BUILD_DIR [cmake args...]
mg_build() {
    local dir=$1; shift
    cmake -S "$MG_REPO" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2 || mg_die "cmake configure failed ($dir)"
    cmake --build "$dir" -j "$(nproc 2>/dev/null || echo 2)" >&2 || mg_die "build failed ($dir)"
}

# 1 when /proc says pid $1 runs a program whose comm starts with $2.
mg_pid_is() {
    local pid=$1 name=$2 comm
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    # comm is truncated to 15 characters
    [[ $comm == "${name:0:15}"* ]]
}

# The pid in file $1 when it names a live process called $2; nothing otherwise.
mg_pidfile_pid() {
    local file=$1 name=$2 pid
    [[ -f $file ]] || return 0
    pid=$(tr -dc '0-9' <"$file" 2>/dev/null | head -c 12)
    mg_pid_is "$pid" "$name" && printf '%s\n' "$pid"
    return 0
}

# Field $2 (1-based, after the ")" closing comm) of /proc/$1/stat: 1 state, 3 pgrp.
mg_stat_field() {
    local stat rest
    local -a f
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    printf '%s\n' "${f[$(($2 - 1))]}"
}

# Succeeds while pid $1 exists and is not a zombie.
mg_alive() {
    local st
    st=$(mg_stat_field "$1" 1)
    [[ -n $st && $st != Z && $st != X ]]
}

# Sends signal $1 to pid $2 and, when it leads its own process group (setsid), to the group.
mg_signal() {
    local sig=$1 pid=$2 pgid
    pgid=$(mg_stat_field "$pid" 3)
    if [[ $pgid == "$pid" ]]; then
        kill "-$sig" -- "-$pid" 2>/dev/null || true
    else
        kill "-$sig" "$pid" 2>/dev/null || true
    fi
}

mg_stop_root() {
    local run=$1/run name pid i
    local -a pids=()
    [[ -d $run ]] || return 0
    for name in installer:mg-installer fcgi:mg-fcgi nginx:nginx; do
        pid=$(mg_pidfile_pid "$run/${name%%:*}.pid" "${name#*:}")
        [[ -n $pid ]] && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do mg_signal TERM "$pid"; done
    for ((i = 0; i < 50; i++)); do
        local alive=()
        for pid in "${pids[@]}"; do mg_alive "$pid" && alive+=("$pid"); done
        pids=("${alive[@]}")
        ((${#pids[@]} == 0)) && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        mg_log "pid $pid did not stop within 5 s; killing it"
        mg_signal KILL "$pid"
    done
    for ((i = 0; i < 20 && ${#pids[@]} > 0; i++)); do
        local left=()
        for pid in "${pids[@]}"; do mg_alive "$pid" && left+=("$pid"); done
        pids=("${left[@]}")
        sleep 0.05
    done
    rm -f "$run/installer.pid" "$run/fcgi.pid" "$run/nginx.pid" "$run/fcgi.sock" \
          "$run/fcgi-bulk.sock" "$run/nchan.sock"
}
