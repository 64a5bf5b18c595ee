# shellcheck shell=bash
# deploy/lib.sh - helpers shared by deploy/up, deploy/down and tests/run (sourced, not run).
#
# mg_need_packages   installs the Debian packages the build and the stack need when any is missing
# mg_build DIR ARGS  configures and builds the CMake tree into DIR (extra cmake ARGS allowed)
# mg_ensure_user U   creates the system user (and group) U when it does not exist
# mg_root_file PATH  makes PATH a regular file of this user, never following a symbolic link
# mg_dir_pids DIR    the processes of the stack whose working directory is DIR or below
# mg_stop_pids N CMD stops what CMD lists (TERM, after N tenths of a second KILL)
# mg_stop_root ROOT  stops every process of the data root ROOT, orphans included
#
# Processes of a root: deploy/up starts runsvdir on ROOT/run/sv; runit starts each service
# with its working directory in ROOT/run/sv/NAME and every process of the stack inherits it.
# So /proc/PID/cwd tells which root a process belongs to, also when its parent is gone (an
# nginx worker whose master was killed still holds the port). Pid files alone cannot.

MG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MG_PACKAGES=(libfcgi-dev libjansson-dev libcurl4-openssl-dev libssl-dev zlib1g-dev nginx
             libnginx-mod-nchan cmake pkg-config gcc libc6-dev make python3 ca-certificates runit)

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
    read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
    # comm is truncated to 15 characters
    [[ $comm == "${name:0:15}"* ]]
}

# The pid in file $1 when it names a live process called $2; nothing otherwise.
mg_pidfile_pid() {
    local file=$1 name=$2 pid
    [[ -f $file ]] || return 0
    pid=$(tr -dc '0-9' <"$file" 2>/dev/null | head -c 12)
    mg_pid_is "$pid" "$name" && mg_alive "$pid" && printf '%s\n' "$pid"
    return 0
}

# Field $2 (1-based, after the ")" closing comm) of /proc/$1/stat: 1 state, 2 ppid, 3 pgrp.
mg_stat_field() {
    local stat rest
    local -a f
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    rest=${stat##*) }
    read -r -a f <<<"$rest"
    printf '%s\n' "${f[$(($2 - 1))]}"
}

# Succeeds while pid $1 exists and is not a zombie (no subshell: run scripts poll it).
mg_alive() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != [ZX] ]]
}

# Succeeds when pid $1 is pid $2 or one of its descendants (no subshell).
mg_descends() {
    local pid=$1 i stat
    for ((i = 0; i < 32; i++)); do
        [[ $pid == "$2" ]] && return 0
        [[ $pid =~ ^[0-9]+$ ]] && ((pid > 1)) || return 1
        read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
        stat=${stat##*) }
        stat=${stat#* }
        pid=${stat%% *}
    done
    return 1
}

# Sends signal $1 to pid $2 and, when it leads its own process group, to the group.
mg_signal() {
    local sig=$1 pid=$2 pgid
    pgid=$(mg_stat_field "$pid" 3)
    if [[ $pgid == "$pid" ]]; then
        kill "-$sig" -- "-$pid" 2>/dev/null || true
    else
        kill "-$sig" "$pid" 2>/dev/null || true
    fi
}

mg_ensure_user() {
    local user=$1
    id -u "$user" >/dev/null 2>&1 && return 0
    mg_log "creating the system user $user"
    # A deploy/up of another root may create it at the same moment.
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin "$user" 2>/dev/null || id -u "$user" >/dev/null 2>&1 ||
        mg_die "cannot create the system user $user (useradd failed)"
}

mg_root_file() {
    local path=$1
    [[ -L $path ]] && rm -f -- "$path"
    [[ -e $path ]] || (set -C && : >"$path") 2>/dev/null || true
    [[ -f $path && ! -L $path && -O $path ]] || mg_die "$path is not a regular file of $(id -un)"
}

# What runs the stack (runit, the run scripts and their helpers) and the stack itself.
MG_STACK_PROGRAMS=" runsvdir runsv chpst mg-service mg-socket-mode sleep nginx mg-fcgi mg-installer "

mg_dir_pids() {
    local dir=$1 pid comm _
    find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$dir" -o -lname "$dir/*" \) \
        2>/dev/null | while IFS=/ read -r _ _ pid _; do
        read -r comm 2>/dev/null <"/proc/$pid/comm" || continue
        [[ $MG_STACK_PROGRAMS == *" $comm "* ]] && mg_alive "$pid" && printf '%s\n' "$pid"
    done
    return 0
}

# Every process of root $1: those working in its run/sv, and those its pid files name (a
# stack started before the supervisor existed ran each daemon in its own session).
mg_root_pids() {
    local run=$1/run name
    mg_dir_pids "$run/sv"
    for name in supervisor:runsvdir installer:mg-installer fcgi:mg-fcgi nginx:nginx; do
        mg_pidfile_pid "$run/${name%%:*}.pid" "${name#*:}"
    done
}

# mg_stop_pids TENTHS CMD...: CMD prints the pids to stop (it is run again and again, so
# that what they start meanwhile is found too). runit's runsvdir and runsv get SIGKILL at
# once: they hold nothing, and nothing may restart what is being stopped (runsv would also
# linger a second after its service). Every other one whose parent is not being stopped too
# gets SIGTERM (nginx, mg-fcgi: their workers are theirs to stop). What still runs after
# TENTHS/10 s gets SIGKILL.
mg_stop_pids() {
    local tenths=$1 i pid ppid; shift
    local -A signalled=() keep=()
    local -a pids
    for ((i = 0; ; i++)); do
        # (a command substitution, waited for: the caller may exec a daemon next)
        read -r -a pids <<<"$("$@" | sort -un | tr '\n' ' ')"
        ((${#pids[@]} == 0)) && return 0
        ((i >= tenths + 20)) && break
        keep=()
        for pid in "${pids[@]}"; do
            if mg_pid_is "$pid" runsvdir || mg_pid_is "$pid" runsv; then
                kill -KILL "$pid" 2>/dev/null || true
            else
                keep[$pid]=1
            fi
        done
        for pid in "${!keep[@]}"; do
            if ((i >= tenths)); then
                ((i == tenths)) && mg_log "pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)) did not stop in time; killing it"
                kill -KILL "$pid" 2>/dev/null || true
                continue
            fi
            [[ -n ${signalled[$pid]:-} ]] && continue
            ppid=$(mg_stat_field "$pid" 2)
            [[ -z $ppid || -n ${keep[$ppid]:-} ]] && continue
            signalled[$pid]=1
            mg_signal TERM "$pid"
        done
        sleep 0.1
    done
    mg_log "processes still running after SIGKILL: ${pids[*]}"
    return 1
}

mg_stop_root() {
    local root=$1 run=$1/run
    [[ -d $run ]] || return 0
    mg_stop_pids 50 mg_root_pids "$root" || mg_die "cannot stop the processes of $root"
    rm -f "$run/supervisor.pid" "$run/installer.pid" "$run/fcgi.pid" "$run/nginx.pid" \
        "$run/fcgi.sock" "$run/fcgi-bulk.sock" "$run/nchan.sock"
}
