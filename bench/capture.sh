#!/usr/bin/env bash
# Benchmark of `sockscope capture` on a capture of real loopback traffic
# with at least 1M packets, against the tools users would otherwise run,
# in the same run:
#
#   line output:            sockscope capture -r F           vs  tcpdump -nn -r F
#   filtered lines:         sockscope capture -r F FILTER    vs  tcpdump -nn -r F FILTER
#                           (FILTER: PSH segments of every connection, whose
#                           analysis needs every packet; FILTER2: a few
#                           tenth of the connections by client port, the
#                           others need no analysis)
#   conversation analysis:  sockscope capture -r F --conv    vs  tshark -r F -q -z conv,tcp
#
# Wall time, CPU time (user+sys) and peak RSS come from /usr/bin/time; each
# command runs 3 times and the best wall time counts (with its CPU time). Targets: lines at least as fast as tcpdump,
# conversations at least 10x faster than tshark, memory bounded (sockscope's
# peak RSS far below the file size: it streams).
#
# The traffic: in a private network namespace (lo MTU 1500, no GSO), a python
# client opens CONNS connections one after another and sends BYTES on each
# with an MSS of 100 bytes; a server thread reads everything. tcpdump
# records it. Needs root, python3, tcpdump, tshark, /usr/bin/time.
#
# Usage: sudo bench/capture.sh [CONNS] [BYTES]   (default 1200 x 60000)
set -euo pipefail
cd "$(dirname "$0")/.."
conns=${1:-1200}
bytes=${2:-60000}
for t in tcpdump tshark python3 /usr/bin/time unshare; do
    command -v "$t" >/dev/null || { echo "bench/capture.sh: $t is missing (apt-get install tcpdump tshark python3 time util-linux)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "bench/capture.sh: run as root (network namespace, tcpdump)" >&2; exit 2; }

cargo build --release -q -p sockscope-cli
bin=$PWD/target/release/sockscope
work=$(mktemp -d /tmp/sockscope-bench-capture.XXXXXX)
trap 'rm -rf "$work"' EXIT
pcap=$work/bench.pcap

cat >"$work/traffic.py" <<'EOF'
import socket, sys, threading
conns, size = int(sys.argv[1]), int(sys.argv[2])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 9000)); ls.listen(128)
def serve():
    for _ in range(conns):
        c, _ = ls.accept()
        while c.recv(1 << 16):
            pass
        c.close()
t = threading.Thread(target=serve); t.start()
data = b"b" * size
for _ in range(conns):
    c = socket.socket()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 100)
    c.connect(("127.0.0.1", 9000))
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()
t.join()
EOF

echo "generating: $conns connections x $bytes bytes, MSS 100, in a private network namespace..."
unshare -n bash -c "
    ip link set lo up; ip link set lo mtu 1500; ip link set lo gso_max_segs 1
    tcpdump -i lo -B 524288 -s 0 -Z root -w '$pcap' 2>'$work/tcpdump.err' &
    pid=\$!
    for _ in \$(seq 250); do grep -q listening '$work/tcpdump.err' && break; sleep 0.02; done
    python3 '$work/traffic.py' $conns $bytes
    sleep 1.5
    kill -INT \$pid; wait \$pid || true
"
grep -E 'captured|dropped' "$work/tcpdump.err" | sed 's/^/  tcpdump: /'
if command -v capinfos >/dev/null; then
    packets=$(capinfos -c -M -T "$pcap" | awk -F'\t' 'NR==2{print $2}')
else
    packets=$(tcpdump -nn -r "$pcap" 2>/dev/null | wc -l)
fi
size=$(stat -c %s "$pcap")
echo "capture: $packets packets, $((size / 1048576)) MiB"
if [ "$packets" -lt 1000000 ]; then
    echo "bench/capture.sh: only $packets packets (need >= 1M); raise CONNS or BYTES" >&2
    exit 1
fi

# best of 3: prints "SECONDS PEAK_RSS_KB CPU_SECONDS"
measure() {
    local best="" rss=0 cpu=""
    for _ in 1 2 3; do
        local rc=0
        /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" >/dev/null 2>"$work/err" || rc=$?
        # 1 is sockscope's "no packet shown"; more is a failure.
        [ "$rc" -le 1 ] || { cat "$work/err" >&2; exit 1; }
        # (time puts "Command exited with non-zero status 1" first then.)
        read -r t m u s < <(tail -n 1 "$work/time")
        if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then
            best=$t
            cpu=$(awk "BEGIN{printf \"%.2f\", $u + $s}")
        fi
        [ "$m" -gt "$rss" ] && rss=$m
    done
    echo "$best $rss $cpu"
}

export TZ=UTC
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r s_lines s_lines_rss s_lines_cpu < <(measure "$bin" capture -r "$pcap")
read -r t_lines t_lines_rss t_lines_cpu < <(measure tcpdump -nn -r "$pcap")
flt='tcp port 9000 and tcp[tcpflags] & tcp-push != 0'
read -r s_flt s_flt_rss s_flt_cpu < <(measure "$bin" capture -r "$pcap" "$flt")
read -r t_flt t_flt_rss t_flt_cpu < <(measure tcpdump -nn -r "$pcap" "$flt")
# About a tenth of the connections: client ports rise from a random start
# by ~10 a connection here, so CONNS ports from the first one.
first=$(tcpdump -nn -r "$pcap" -c 1 'tcp[tcpflags] = tcp-syn' 2>/dev/null | sed -n 's/.* 127\.0\.0\.1\.\([0-9]*\) > .*/\1/p')
flt2="tcp portrange ${first:-40000}-$(( ${first:-40000} + conns ))"
read -r s_flt2 s_flt2_rss s_flt2_cpu < <(measure "$bin" capture -r "$pcap" "$flt2")
read -r t_flt2 t_flt2_rss t_flt2_cpu < <(measure tcpdump -nn -r "$pcap" "$flt2")
read -r s_conv s_conv_rss s_conv_cpu < <(measure "$bin" capture -r "$pcap" --conv)
read -r t_conv t_conv_rss t_conv_cpu < <(measure tshark -r "$pcap" -q -z conv,tcp)
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

ratio() { awk "BEGIN{ if ($2 == 0) print \"inf\"; else printf \"%.1f\", $1 / $2 }"; }
line_ratio=$(ratio "$t_lines" "$s_lines")
conv_ratio=$(ratio "$t_conv" "$s_conv")
flt_ratio=$(ratio "$t_flt" "$s_flt")
flt2_ratio=$(ratio "$t_flt2" "$s_flt2")
cpu_ratio=$(ratio "$t_lines_cpu" "$s_lines_cpu")
verdict() { awk "BEGIN{exit !($1)}" && echo PASS || echo FAIL; }
v_lines=$(verdict "$s_lines <= $t_lines")
v_conv=$(verdict "$t_conv >= 10 * $s_conv")
# Bounded memory: streaming, so peak RSS stays under a quarter of the file.
v_mem=$(verdict "$s_conv_rss * 1024 < $size / 4 && $s_lines_rss * 1024 < $size / 4")

printf '\n%-44s %10s %10s %12s\n' "command" "seconds" "CPU s" "peak RSS MiB"
row() { printf '%-44s %10s %10s %12d\n' "$1" "$2" "$3" $(($4 / 1024)); }
row "sockscope capture -r F" "$s_lines" "$s_lines_cpu" "$s_lines_rss"
row "tcpdump -nn -r F" "$t_lines" "$t_lines_cpu" "$t_lines_rss"
row "sockscope capture -r F FILTER" "$s_flt" "$s_flt_cpu" "$s_flt_rss"
row "tcpdump -nn -r F FILTER" "$t_flt" "$t_flt_cpu" "$t_flt_rss"
row "sockscope capture -r F FILTER2" "$s_flt2" "$s_flt2_cpu" "$s_flt2_rss"
row "tcpdump -nn -r F FILTER2" "$t_flt2" "$t_flt2_cpu" "$t_flt2_rss"
row "sockscope capture -r F --conv" "$s_conv" "$s_conv_cpu" "$s_conv_rss"
row "tshark -r F -q -z conv,tcp" "$t_conv" "$t_conv_cpu" "$t_conv_rss"
echo
echo "lines: sockscope is ${line_ratio}x tcpdump's speed (target >= 1.0): $v_lines; by CPU time ${cpu_ratio}x"
echo "filtered lines (FILTER = $flt): sockscope is ${flt_ratio}x tcpdump's speed"
echo "filtered lines (FILTER2 = $flt2): sockscope is ${flt2_ratio}x tcpdump's speed"
echo "conversations: sockscope is ${conv_ratio}x tshark's speed (target >= 10): $v_conv"
echo "memory bounded (peak RSS < file size / 4 = $((size / 4 / 1048576)) MiB): $v_mem"
[ "$v_lines$v_conv$v_mem" = PASSPASSPASS ]
