#!/usr/bin/env bash
# bench/lab.sh — requests per second of `sockscope lab serve` in every process
# model, against nginx with 1 and 2 workers, measured in one run with wrk.
#
# Everything runs inside one private network namespace (the script re-runs
# itself under `unshare -n`, brings lo up): servers and wrk talk over
# loopback only. Every server serves the same small file (612 bytes, the size
# of nginx's default page) from the same directory. nginx runs with
# access_log off, sendfile on and keepalive_requests raised to 1000000 (the
# lab server never closes a keep-alive connection on its own, so nginx's
# default of 1000 would make it reconnect where the lab does not).
#
# Two loads per server, each `wrk -t$THREADS -c$CONNS -d$DURATION`:
#   keep-alive  wrk's default: each connection reused for every request;
#   close       `Connection: close` on every request: one TCP connection per
#               request, which shows what accept (and fork) per connection cost.
# The single model serves one connection at a time: under keep-alive it
# serves one of wrk's connections until that one closes (wrk counts the
# others as timeouts) and is reported as it is.
#
# With ROUNDS > 1 every server is measured once per round, rounds one after
# the other (so a slow spell on a shared machine hits all servers alike),
# and the table shows the median of the rounds.
#
# Prints a Markdown table (requests/s, ratio to nginx with 2 workers) and
# checks the target: prefork 2 and reuseport 2 reach at least 2/3 of nginx's
# requests/s with 2 workers (keep-alive load).
#
# Usage: bench/lab.sh [--quick] [--sockscope PATH]
#   --quick        3 s per measurement instead of 10
#   --sockscope P  binary to test (default: target/release/sockscope, built
#                  with `cargo build --release -p sockscope-cli` if missing)
# Environment: DURATION (10), THREADS (2), CONNS (50), ROUNDS (1), MODELS
# (default "single fork epoll prefork:1 prefork:2 reuseport:1 reuseport:2"),
# LOADS ("keep-alive close").
# Needs root (unshare), wrk, nginx, curl (Debian: apt-get install wrk nginx curl).
# Exit: 0 target met, 1 target missed, 2 setup error.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
SOCKSCOPE=${SOCKSCOPE:-$ROOT/target/release/sockscope}
DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
ROUNDS=${ROUNDS:-1}
MODELS=${MODELS:-"single fork epoll prefork:1 prefork:2 reuseport:1 reuseport:2"}
LOADS=${LOADS:-"keep-alive close"}

usage() { sed -n '2,/^$/{s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
die() { echo "lab.sh: $*" >&2; exit 2; }

while (($#)); do
    case $1 in
        --quick) DURATION=3 ;;
        --sockscope) shift; SOCKSCOPE=${1:?--sockscope needs a path} ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || die "run as root: the benchmark makes a private network namespace"
for t in wrk nginx curl unshare ip; do
    command -v "$t" >/dev/null || die "$t is missing (Debian: apt-get install wrk nginx curl iproute2 util-linux)"
done
if [ ! -x "$SOCKSCOPE" ]; then
    (cd "$ROOT" && cargo build --release -p sockscope-cli) || die "cannot build sockscope"
fi

# Re-run inside a private network namespace.
if [ -z "${LAB_BENCH_IN_NETNS:-}" ]; then
    export LAB_BENCH_IN_NETNS=1 SOCKSCOPE DURATION THREADS CONNS ROUNDS MODELS LOADS
    exec unshare -n -- "$0"
fi
ip link set lo up

WORK=$(mktemp -d /tmp/sockscope-lab-bench.XXXXXX)
chmod 755 "$WORK"
mkdir "$WORK/www" "$WORK/nginx"
chmod 755 "$WORK/www"
head -c 612 /dev/zero | tr '\0' 'x' > "$WORK/www/index.html"
chmod 644 "$WORK/www/index.html"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT=8100
URL_PATH=/index.html

wait_ready() { # port
    for _ in $(seq 100); do
        if curl -s -o /dev/null "http://127.0.0.1:$1$URL_PATH"; then return 0; fi
        sleep 0.05
    done
    die "nothing answers on 127.0.0.1:$1"
}

# wrk_rps PORT LOAD -> requests/s (integer), plus errors on stderr
wrk_rps() {
    local hdr=()
    [ "$2" = close ] && hdr=(-H "Connection: close")
    local out
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$1$URL_PATH" 2>&1)
    local errs
    errs=$(grep -E "Socket errors|Non-2xx" <<<"$out" | tr -s ' ' | paste -sd';' || true)
    [ -n "$errs" ] && echo "    ($errs)" >&2
    awk '/^Requests\/sec:/ {printf "%d", $2}' <<<"$out"
}

declare -A RPS  # "name|load" -> space-separated results of every round
NAMES=()

bench_server() { # name port
    for load in $LOADS; do
        local r
        r=$(wrk_rps "$2" "$load")
        RPS["$1|$load"]="${RPS["$1|$load"]:-} ${r:-0}"
        printf '  round %s  %-14s %-10s %8s req/s\n' "$round" "$1" "$load" "${r:-0}" >&2
    done
}

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print 0}'; }

echo "lab.sh: $(nproc) CPUs, kernel $(uname -r), wrk -t$THREADS -c$CONNS -d${DURATION}s, $ROUNDS round(s), file of 612 bytes" >&2

for round in $(seq "$ROUNDS"); do
    PORT=8100
    for w in 1 2; do
        PORT=$((PORT + 1))
        cat > "$WORK/nginx/nginx-$w.conf" <<NGX
worker_processes $w;
daemon off;
pid $WORK/nginx/nginx-$w.pid;
error_log $WORK/nginx/error-$w.log;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    include /etc/nginx/mime.types;
    server { listen 127.0.0.1:$PORT; root $WORK/www; }
}
NGX
        nginx -c "$WORK/nginx/nginx-$w.conf" -p "$WORK/nginx" &
        p=$!
        PIDS+=("$p")
        wait_ready "$PORT"
        [ "$round" = 1 ] && NAMES+=("nginx $w")
        bench_server "nginx $w" "$PORT"
        kill -QUIT "$p"
        wait "$p" 2>/dev/null || true
    done

    for m in $MODELS; do
        PORT=$((PORT + 1))
        name=${m/:/ }
        # shellcheck disable=SC2086 # "prefork 2" is two arguments
        "$SOCKSCOPE" lab serve $name --root "$WORK/www" --addr "127.0.0.1:$PORT" --max-conns 4096 >/dev/null &
        p=$!
        PIDS+=("$p")
        wait_ready "$PORT"
        [ "$round" = 1 ] && NAMES+=("$name")
        bench_server "$name" "$PORT"
        kill -TERM "$p"
        wait "$p" 2>/dev/null || true
    done
done

for k in "${!RPS[@]}"; do
    RPS[$k]=$(median <<<"${RPS[$k]}")
done

ref_ka=${RPS["nginx 2|keep-alive"]:-0}
ref_cl=${RPS["nginx 2|close"]:-0}
ratio() { # value ref
    if [ "${2:-0}" -gt 0 ] 2>/dev/null; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo "-"; fi
}
echo
echo "| server | keep-alive req/s | / nginx 2 | close req/s | / nginx 2 |"
echo "|---|---:|---:|---:|---:|"
for n in "${NAMES[@]}"; do
    ka=${RPS["$n|keep-alive"]:--}
    cl=${RPS["$n|close"]:--}
    label=$n
    [[ $n != nginx* ]] && label="lab $n"
    echo "| $label | $ka | $(ratio "${ka/-/0}" "$ref_ka") | $cl | $(ratio "${cl/-/0}" "$ref_cl") |"
done
echo

status=0
for n in "prefork 2" "reuseport 2"; do
    v=${RPS["$n|keep-alive"]:-}
    [ -z "$v" ] && continue
    r=$(ratio "$v" "$ref_ka")
    if awk -v r="$r" 'BEGIN {exit !(r >= 0.6667)}'; then
        echo "PASS $n: $r of nginx 2 workers (target >= 0.67)"
    else
        echo "FAIL $n: $r of nginx 2 workers (target >= 0.67)"
        status=1
    fi
done
exit $status
