#!/usr/bin/env python3
"""Build many established loopback TCP sockets for the `sockscope ls` benchmark.

Run this inside a fresh, private network namespace (the driver does
`unshare -n`, then `ip link set lo up`). It never touches the host's
namespace: the sysctls it writes are per-namespace ones.

What it builds:
  * L listening sockets on 127.0.0.1 (ports BASE .. BASE+L-1), made before
    any fork, so every process holds them (like a pre-fork server);
  * N/2 TCP connections to those listeners, both ends kept open, so N
    established sockets, spread evenly over P processes (this process and
    P-1 forked children). Each process holds the client ends it connected
    and as many server ends as it accepted.

When everything is built it prints "READY <pid>" (pid of this process, in
whose network namespace the sockets live) on stdout, and a one-line summary
on stderr. It then holds the sockets until stdin reaches end of file, or it
gets SIGTERM / SIGINT / SIGHUP; then it tells its children to exit (they
read end of file on a pipe this process holds), reaps them and exits 0.
If this process is killed outright, the children still see end of file on
that pipe and exit by themselves.

Python 3 standard library only.
"""

import argparse
import os
import resource
import signal
import socket
import sys
import time


class Stop(Exception):
    """Raised from a signal handler to leave the holding wait."""


def write_sysctl(path: str, value: str) -> None:
    """Write a per-namespace sysctl; failure is reported, not fatal."""
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        print(f"mksockets: warning: cannot set {path}: {e}", file=sys.stderr)


def raise_nofile(need: int) -> None:
    """Make sure this process (and its children) may hold `need` descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        # Only root may raise the hard limit; the kernel caps it at fs.nr_open.
        try:
            with open("/proc/sys/fs/nr_open") as f:
                nr_open = int(f.read())
        except (OSError, ValueError):
            nr_open = need
        hard = max(hard, min(need, nr_open))
    soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    except (ValueError, OSError) as e:
        sys.exit(f"mksockets: cannot raise RLIMIT_NOFILE to {need}: {e}")
    if soft < need:
        sys.exit(f"mksockets: RLIMIT_NOFILE capped at {soft}, need {need}")


def build_share(count: int, first: int, ports: list, addr: str) -> list:
    """Make `count` connections and accept as many; return the sockets.

    Connect and accept strictly alternate in every process, so a shared
    accept queue never holds more than one entry per process and a blocking
    accept() always finds a connection (ours or another process's).
    """
    held = []
    listeners = BUILD_LISTENERS
    nports = len(ports)
    for i in range(first, first + count):
        k = i % nports
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.connect((addr, ports[k]))
        s, _ = listeners[k].accept()
        held.append(c)
        held.append(s)
    return held


BUILD_LISTENERS: list = []


def child_main(count, first, ports, addr, ready_w, hold_r) -> None:
    """Body of a forked child; never returns."""
    code = 1
    try:
        # Ctrl-C on a terminal reaches the whole process group: let the
        # parent decide, it will close the hold pipe.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        held = build_share(count, first, ports, addr)
        os.write(ready_w, b"+")
        os.close(ready_w)
        ready_w = -1
        while os.read(hold_r, 1):  # returns b"" once the parent is gone
            pass
        del held
        code = 0
    except BaseException as e:  # report any failure, then exit
        print(f"mksockets: child {os.getpid()}: {e!r}", file=sys.stderr)
        if ready_w >= 0:
            try:
                os.write(ready_w, b"!")
            except OSError:
                pass
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--sockets", type=int, required=True,
                    help="established sockets to build (N/2 connections)")
    ap.add_argument("-p", "--procs", type=int, required=True,
                    help="processes that hold them (this one + P-1 children)")
    ap.add_argument("-l", "--listeners", type=int, default=8,
                    help="listening sockets (default 8)")
    ap.add_argument("--port-base", type=int, default=20000,
                    help="first listener port (default 20000)")
    ap.add_argument("--addr", default="127.0.0.1",
                    help="loopback address of the listeners (default 127.0.0.1)")
    args = ap.parse_args()

    if args.sockets < 0 or args.sockets % 2:
        ap.error("--sockets must be an even number >= 0")
    if args.procs < 1:
        ap.error("--procs must be >= 1")
    if args.listeners < 1:
        ap.error("--listeners must be >= 1")
    if not 1024 <= args.port_base <= 65535 - args.listeners:
        ap.error("--port-base out of range")

    t0 = time.monotonic()
    # Per-namespace sysctls: room for ~64k ephemeral ports per destination and
    # a deep accept queue. These fail harmlessly if not root.
    write_sysctl("/proc/sys/net/ipv4/ip_local_port_range", "1024 65535")
    write_sysctl("/proc/sys/net/core/somaxconn", "65535")

    conns = args.sockets // 2
    base, extra = divmod(conns, args.procs)
    shares = [base + (1 if i < extra else 0) for i in range(args.procs)]
    # Worst case a process accepts every pending connection of the others
    # too, but strict connect/accept alternation bounds that by procs.
    raise_nofile(2 * max(shares) + args.procs + args.listeners + 64)

    ports = list(range(args.port_base, args.port_base + args.listeners))
    for port in ports:
        ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((args.addr, port))
        ls.listen(4096)
        BUILD_LISTENERS.append(ls)

    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    children = []
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            raise Stop(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        # A signal ignored by whoever started us stays ignored: a driver
        # script's background job must outlive a Ctrl-C meant for the
        # driver, which then closes our stdin.
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, on_signal)

    rc = 0
    held = []
    ready = False
    try:
        first = shares[0]
        for share in shares[1:]:
            pid = os.fork()
            if pid == 0:
                os.close(ready_r)
                os.close(hold_w)
                child_main(share, first, ports, args.addr, ready_w, hold_r)
            children.append(pid)
            first += share
        os.close(ready_w)
        os.close(hold_r)
        # This process takes the first share, in parallel with the children.
        held = build_share(shares[0], 0, ports, args.addr)
        got = 0
        while got < len(children):
            b = os.read(ready_r, 4096)
            if not b:
                raise RuntimeError("a child exited before it was ready")
            if b"!" in b:
                raise RuntimeError("a child failed to build its sockets")
            got += len(b)
        os.close(ready_r)
        ready = True
        elapsed = time.monotonic() - t0
        print(f"mksockets: {2 * conns} established + {args.listeners} listening "
              f"TCP sockets in {args.procs} processes, built in {elapsed:.2f} s",
              file=sys.stderr, flush=True)
        print(f"READY {os.getpid()}", flush=True)
        # Hold until stdin closes (or a signal arrives).
        while os.read(0, 4096):
            pass
    except Stop as e:
        print(f"mksockets: {e}, exiting", file=sys.stderr)
    except (OSError, RuntimeError) as e:
        print(f"mksockets: error: {e}", file=sys.stderr)
        rc = 1
    finally:
        # Ignore further signals while tearing down, so cleanup finishes.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        os.close(hold_w)  # ready children read end of file and exit
        if not ready:
            # Some may be blocked in accept() waiting for connections that
            # will never come: stop them outright.
            for pid in children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for pid in children:
            while True:
                try:
                    _, status = os.waitpid(pid, 0)
                except ChildProcessError:
                    break
                except InterruptedError:
                    continue
                if os.waitstatus_to_exitcode(status) != 0 and ready and not stopping:
                    rc = 1
                break
        for s in held:
            s.close()
        for ls in BUILD_LISTENERS:
            ls.close()
    return rc


if __name__ == "__main__":
    sys.exit(main())
