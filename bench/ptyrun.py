#!/usr/bin/env python3
"""Run a full-screen command in a pseudo-terminal for bench/top.sh and
report what it cost.

    ptyrun.py SECONDS ROWS COLS READY_TEXT -- COMMAND...

Starts COMMAND on a new pty of ROWS x COLS, reads (and throws away) what it
draws, and waits until READY_TEXT appears in its output (first screen). Then
it measures for SECONDS: CPU time of the command and of the children it
waited for (utime+stime+cutime+cstime from /proc/PID/stat), its peak RSS
(VmHWM) and the peak RSS of any child seen (polled every 20 ms), then sends
`q` and reaps it. Prints one line of JSON:
{"first_screen_s", "cpu_s", "wall_s", "cpu_pct", "rss_kib", "child_rss_kib"}.
"""
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import fcntl
import time

CLK = os.sysconf("SC_CLK_TCK")


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    # utime stime cutime cstime are fields 14-17 (1-based): 11..14 here.
    return sum(int(x) for x in fields[11:15]) / CLK


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def main():
    secs, rows, cols, ready = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    assert sys.argv[5] == "--"
    argv = sys.argv[6:]
    t0 = time.monotonic()
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(argv[0], argv)
    buf = b""
    first = None
    child_rss = 0

    def drain(timeout):
        nonlocal buf
        r, _, _ = select.select([fd], [], [], timeout)
        if r:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                return False
            if not data:
                return False
            if first is None:
                buf = (buf + data)[-65536:]
        return True

    while first is None:
        if not drain(0.05):
            sys.exit(f"ptyrun: {argv[0]} exited before drawing {ready!r}: {buf[-1500:]!r}")
        if ready.encode() in buf:
            first = time.monotonic() - t0
        if time.monotonic() - t0 > 60:
            sys.exit(f"ptyrun: no {ready!r} after 60 s; last output: {buf[-1500:]!r}")
    c0, w0 = cpu(pid), time.monotonic()
    end = w0 + secs
    while time.monotonic() < end:
        drain(0.02)
        for c in children(pid):
            child_rss = max(child_rss, status(c, "VmHWM"))
    c1, w1 = cpu(pid), time.monotonic()
    rss = status(pid, "VmHWM")
    os.write(fd, b"q")
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        drain(0.05)
        p, _ = os.waitpid(pid, os.WNOHANG)
        if p:
            break
    else:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    print(json.dumps({
        "first_screen_s": round(first, 3),
        "cpu_s": round(c1 - c0, 3),
        "wall_s": round(w1 - w0, 3),
        "cpu_pct": round(100 * (c1 - c0) / (w1 - w0), 2),
        "rss_kib": rss,
        "child_rss_kib": child_rss,
    }))


if __name__ == "__main__":
    main()
