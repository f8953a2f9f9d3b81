#!/usr/bin/env bash
# Starts and stops the peer stores kvbench compares RingKV with, on loopback.
#
#   scripts/peers.sh start redis [--mode none|everysec|always] [--port 6399]
#   scripts/peers.sh stop redis [--port 6399]
#   scripts/peers.sh status redis [--port 6399]
#   scripts/peers.sh start|stop|status etcd [--members 1|3]
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
#
# etcd (package etcd-server; etcdctl from etcd-client is used for the health
# check when present): a static cluster on loopback, etcd's defaults otherwise
# (fsync of the WAL on every commit, snapshot-count 100000 in 3.4):
#   --members 1   client 2379, peer 2380
#   --members 3   clients 2379/2479/2579, peers 2380/2480/2580
#                 (--initial-cluster, --initial-cluster-state new)
# kvbench: --target etcd --endpoint 127.0.0.1:2379,127.0.0.1:2479,127.0.0.1:2579
set -euo pipefail

usage() {
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
action=$1 peer=$2
shift 2
mode=none port=6399 members=1
while [ $# -gt 0 ]; do
    case $1 in
        --mode) mode=${2:?--mode needs a value}; shift 2 ;;
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --members) members=${2:?--members needs a value}; shift 2 ;;
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

# Member i (0-based) of an etcd cluster listens on 2379+100i (clients) and 2380+100i (peers).
etcd_client_port() { echo $((2379 + 100 * $1)); }
etcd_peer_port() { echo $((2380 + 100 * $1)); }

etcd_endpoints() {
    local i list=()
    for ((i = 0; i < members; i++)); do list+=("127.0.0.1:$(etcd_client_port "$i")"); done
    (IFS=,; echo "${list[*]}")
}

# True when every member answers: `etcdctl endpoint health` if installed,
# otherwise GET /health on each client port (bash /dev/tcp, no curl needed).
etcd_healthy() {
    local endpoints
    endpoints=$(etcd_endpoints)
    if command -v etcdctl >/dev/null 2>&1; then
        ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --command-timeout=1s endpoint health >/dev/null 2>&1
        return
    fi
    local i port reply
    for ((i = 0; i < members; i++)); do
        port=$(etcd_client_port "$i")
        reply=$(timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port &&
            printf 'GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3 && cat <&3" 2>/dev/null) || return 1
        case $reply in *'"health":"true"'*) ;; *) return 1 ;; esac
    done
}

etcd_start() {
    if ! command -v etcd >/dev/null 2>&1; then
        echo "peers.sh: etcd not installed; skipping etcd (install it with: apt-get install etcd-server etcd-client)" >&2
        return 0
    fi
    case $members in
        1 | 3) ;;
        *) echo "peers.sh: --members must be 1 or 3, not '$members'" >&2; exit 2 ;;
    esac
    if [ -f "$state_dir/etcd.pids" ]; then
        echo "peers.sh: etcd already started by this script (stop it first: $0 stop etcd)" >&2
        exit 1
    fi
    mkdir -p "$state_dir"
    local data i name cluster=() token
    data=$(mktemp -d "${TMPDIR:-/tmp}/ringkv-etcd.XXXXXX")
    echo "$data" >"$state_dir/etcd.dir"
    echo "$members" >"$state_dir/etcd.members"
    for ((i = 0; i < members; i++)); do cluster+=("m$i=http://127.0.0.1:$(etcd_peer_port "$i")"); done
    token=ringkv-bench-$$
    : >"$state_dir/etcd.pids"
    for ((i = 0; i < members; i++)); do
        name=m$i
        etcd --name "$name" --data-dir "$data/$name" \
            --listen-client-urls "http://127.0.0.1:$(etcd_client_port "$i")" \
            --advertise-client-urls "http://127.0.0.1:$(etcd_client_port "$i")" \
            --listen-peer-urls "http://127.0.0.1:$(etcd_peer_port "$i")" \
            --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer_port "$i")" \
            --initial-cluster "$(IFS=,; echo "${cluster[*]}")" \
            --initial-cluster-state new --initial-cluster-token "$token" \
            </dev/null >"$data/$name.log" 2>&1 &
        echo $! >>"$state_dir/etcd.pids"
    done
    # Wait (up to 30 s) until every member reports healthy (a leader is elected).
    local deadline=$((SECONDS + 30))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if etcd_healthy; then
            echo "etcd $(etcd --version | awk '/^etcd Version/ {print $3}'), $members member(s) on $(etcd_endpoints)," \
                "defaults (WAL fsync per commit), data $data"
            return 0
        fi
        sleep 0.2
    done
    echo "peers.sh: etcd did not become healthy within 30 s; logs: $data/m*.log" >&2
    exit 1
}

etcd_stop() {
    local pidfile="$state_dir/etcd.pids" dirfile="$state_dir/etcd.dir" pid
    if [ -f "$pidfile" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$pidfile"
        while read -r pid; do
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        done <"$pidfile"
        rm -f "$pidfile"
    fi
    if [ -f "$dirfile" ]; then
        rm -rf "$(cat "$dirfile")"
        rm -f "$dirfile"
    fi
    rm -f "$state_dir/etcd.members"
    echo "etcd stopped"
}

etcd_status() {
    # Status describes the cluster `start` made, whatever --members says now.
    [ -f "$state_dir/etcd.members" ] && members=$(cat "$state_dir/etcd.members")
    if etcd_healthy; then
        echo "etcd: up, $members member(s) on $(etcd_endpoints)"
    else
        echo "etcd: down (or not every member healthy) on $(etcd_endpoints)"
    fi
}

case $peer:$action in
    redis:start) redis_start ;;
    redis:stop) redis_stop ;;
    redis:status) redis_status ;;
    etcd:start) etcd_start ;;
    etcd:stop) etcd_stop ;;
    etcd:status) etcd_status ;;
    redis:* | etcd:*) usage ;;
    *) echo "peers.sh: unknown peer '$peer' (redis, etcd)" >&2; exit 2 ;;
esac
