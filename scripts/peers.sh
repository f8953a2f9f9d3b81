#!/usr/bin/env bash
# Starts and stops the peer stores kvbench compares RingKV with, on loopback.
#
#   scripts/peers.sh start redis [--mode none|everysec|always] [--port 6399]
#   scripts/peers.sh stop redis [--port 6399]
#   scripts/peers.sh status redis [--port 6399]
#
# Peers are real servers from Debian packages; this script never downloads
# anything. A peer that is not installed is skipped with a message saying how
# to install it (exit 0, so a benchmark matrix goes on without it).
#
# Redis modes (the durability class, stated in kvbench's output via --json):
#   none      --save "" --appendonly no                       (no persistence)
#   everysec  --save "" --appendonly yes --appendfsync everysec
#   always    --save "" --appendonly yes --appendfsync always
# Data lives in a fresh temp dir, removed by `stop`.
set -euo pipefail

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
action=$1 peer=$2
shift 2
mode=none port=6399
while [ $# -gt 0 ]; do
    case $1 in
        --mode) mode=${2:?--mode needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        *) usage ;;
    esac
done

state_dir=${TMPDIR:-/tmp}/ringkv-peers

redis_cli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }

redis_start() {
    if ! command -v redis-server >/dev/null 2>&1; then
        echo "peers.sh: redis-server not installed; skipping Redis (install it with: apt-get install redis-server)" >&2
        return 0
    fi
    mkdir -p "$state_dir"
    local persistence
    case $mode in
        none) persistence=(--appendonly no) ;;
        everysec) persistence=(--appendonly yes --appendfsync everysec) ;;
        always) persistence=(--appendonly yes --appendfsync always) ;;
        *) echo "peers.sh: unknown redis mode '$mode' (none|everysec|always)" >&2; exit 2 ;;
    esac
    if [ -f "$state_dir/redis-$port.pid" ] && kill -0 "$(cat "$state_dir/redis-$port.pid")" 2>/dev/null; then
        echo "peers.sh: redis already running on 127.0.0.1:$port (stop it first)" >&2
        exit 1
    fi
    local data
    data=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-redis-$port.XXXXXX")
    echo "$data" >"$state_dir/redis-$port.dir"
    redis-server --bind 127.0.0.1 --port "$port" --dir "$data" --save "" "${persistence[@]}" \
        --daemonize yes --pidfile "$state_dir/redis-$port.pid" --logfile "$data/redis.log" \
        --protected-mode yes
    # Wait (up to 10 s) until it answers.
    for _ in $(seq 100); do
        if redis_cli ping >/dev/null 2>&1; then
            echo "redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$port, mode $mode:" \
                "--save \"\" ${persistence[*]}, data $data"
            return 0
        fi
        sleep 0.1
    done
    echo "peers.sh: redis did not answer on 127.0.0.1:$port; log: $data/redis.log" >&2
    exit 1
}

redis_stop() {
    local pidfile="$state_dir/redis-$port.pid" dirfile="$state_dir/redis-$port.dir"
    if [ -f "$pidfile" ]; then
        local pid
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    fi
    if [ -f "$dirfile" ]; then
        rm -rf "$(cat "$dirfile")"
        rm -f "$dirfile"
    fi
    echo "redis on 127.0.0.1:$port stopped"
}

redis_status() {
    if redis_cli ping >/dev/null 2>&1; then
        echo "redis on 127.0.0.1:$port: up, appendonly $(redis_cli config get appendonly | tail -1)," \
            "appendfsync $(redis_cli config get appendfsync | tail -1)"
    else
        echo "redis on 127.0.0.1:$port: down"
    fi
}

case $peer in
    redis) ;;
    *) echo "peers.sh: unknown peer '$peer' (redis)" >&2; exit 2 ;;
esac
case $action in
    start) redis_start ;;
    stop) redis_stop ;;
    status) redis_status ;;
    *) usage ;;
esac
