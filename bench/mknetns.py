#!/usr/bin/env python3
"""Build many named network namespaces holding TCP sockets, for the
`sockscope ls --all-netns` benchmark.

What it builds: COUNT namespaces named PREFIX-001 .. PREFIX-COUNT (made with
`ip netns add`, so `ip netns exec NAME ...` reaches them), each with its
loopback up, one listener on 127.0.0.1:20000 and N/2 loopback connections
to it (N established sockets). A few forked workers hold the sockets,
each as many namespaces as its RLIMIT_NOFILE allows (the hard limit may
not be raisable, even by root in a container): a worker enters each of
its namespaces in turn with setns(2) (a socket stays in the namespace it
was made in), so no process per namespace is needed.

When everything is built it prints "READY <pid>" on stdout and holds the
sockets until stdin reaches end of file or it gets SIGTERM / SIGINT /
SIGHUP; then it closes them and deletes the namespaces it made (also when
building fails half-way). Namespaces with these names that already exist
are an error (a previous run that was killed: `ip netns delete` them).

Needs root and iproute2; Python 3 standard library only.
"""

import argparse
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000


class Stop(Exception):
    """Raised from a signal handler to leave the holding wait."""


def setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


def ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")


def nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard one; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def build(names: list, sockets: int, home: int) -> list:
    """Make the sockets of each namespace in `names`; return them."""
    held = []
    for name in names:
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            setns(fd)
        finally:
            os.close(fd)
        with open("/proc/sys/net/core/somaxconn", "w") as f:
            f.write("65535")
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.bind(("127.0.0.1", 20000))
        ls.listen(4096)
        held.append(ls)
        for _ in range(sockets // 2):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect(("127.0.0.1", 20000))
            s, _ = ls.accept()
            held.append(c)
            held.append(s)
    setns(home)
    return held


def worker(names, sockets, home, ready_w, hold_r) -> None:
    """A forked worker: build, say so, hold until the parent goes."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        held = build(names, sockets, home)
        os.write(ready_w, b"+")
        while os.read(hold_r, 1):
            pass
        del held
        code = 0
    except BaseException as e:
        print(f"mknetns: worker {os.getpid()}: {e!r}", file=sys.stderr)
        try:
            os.write(ready_w, b"!")
        except OSError:
            pass
    finally:
        os._exit(code)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-c", "--count", type=int, required=True, help="namespaces")
    ap.add_argument("-n", "--sockets", type=int, required=True,
                    help="established sockets per namespace (N/2 connections)")
    ap.add_argument("--prefix", default="sockscope-bench",
                    help="namespace name prefix (default sockscope-bench)")
    args = ap.parse_args()
    if args.count < 1 or args.sockets < 0 or args.sockets % 2:
        ap.error("--count must be >= 1 and --sockets an even number >= 0")

    t0 = time.monotonic()
    per_worker = max(1, (nofile() - 64) // (args.sockets + 1))
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    names = [f"{args.prefix}-{i:03d}" for i in range(1, args.count + 1)]
    made = []
    workers = []
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, on_signal)

    rc = 0
    try:
        for name in names:
            ip("netns", "add", name)
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        for i in range(0, len(names), per_worker):
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                os.close(hold_w)
                worker(names[i:i + per_worker], args.sockets, home, ready_w, hold_r)
            workers.append(pid)
        os.close(ready_w)
        os.close(hold_r)
        got = 0
        while got < len(workers):
            b = os.read(ready_r, 64)
            if not b or b"!" in b:
                raise RuntimeError("a worker failed to build its sockets")
            got += len(b)
        print(f"mknetns: {args.count} namespaces x ({args.sockets} established + 1 "
              f"listening) TCP sockets in {len(workers)} processes, built in "
              f"{time.monotonic() - t0:.2f} s", file=sys.stderr, flush=True)
        print(f"READY {os.getpid()}", flush=True)
        while os.read(0, 4096):
            pass
    except Stop as e:
        print(f"mknetns: {e}, exiting", file=sys.stderr)
    except (OSError, RuntimeError) as e:
        print(f"mknetns: error: {e}", file=sys.stderr)
        rc = 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        os.close(hold_w)  # workers read end of file and exit
        for pid in workers:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        for name in made:
            try:
                ip("netns", "delete", name)
            except RuntimeError as e:
                print(f"mknetns: {e}", file=sys.stderr)
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
