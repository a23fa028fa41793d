//! `sockscope ls` selection: socket-kind and family flags, `-l`/`-a` and the
//! default state set, and the ss filter language (`state`, `exclude`,
//! `dport`, `src`, `dst`, `pid`, `comm`, `uid`, `inode`, `not`, `or`), each
//! checked against the exact set of fixture sockets it must select. Nothing
//! matching exits 1.

#[path = "common/root.rs"]
mod root;

mod common;

use common::{Fixture, MSocket, assert_same_keys};

/// States the default listing (no -l, no -a) leaves out, as ss does.
const NOT_DEFAULT: [&str; 4] = ["listening", "closed", "time-wait", "syn-recv"];

/// `ls --json <args>` must list exactly the manifest sockets for which
/// `pred` holds.
fn expect(fx: &Fixture, args: &[&str], pred: impl Fn(&MSocket) -> bool) {
    let list = fx.ls_json(args);
    let want = fx.manifest.keys_where(pred);
    assert!(!want.is_empty(), "test bug: {args:?} expects nothing");
    assert_same_keys(&format!("ls {}", args.join(" ")), fx, &list, &want);
}

fn named(names: &'static [&'static str]) -> impl Fn(&MSocket) -> bool {
    move |s| names.contains(&s.name.as_str())
}

#[test]
fn listening_only() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    // LISTEN, plus UNCONN for udp, raw and unix datagram sockets.
    expect(&fx, &["-l", "-n"], |s| {
        s.state == "listening" || s.state == "closed"
    });
    expect(&fx, &["-l", "-n", "-t"], |s| {
        s.state == "listening" && s.proto == "tcp"
    });
}

#[test]
fn default_states_like_ss() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-n"], |s| !NOT_DEFAULT.contains(&s.state.as_str()));
    // The orphaned FIN-WAIT-2 (a time-wait sock in FIN-WAIT-2) is listed by
    // default; the TIME-WAIT one is not.
    let list = fx.ls_json(&["-n", "-t"]);
    let ks = common::keys(&list);
    assert!(ks.contains(&fx.manifest.get("tcp4-finwait2-orphan").key()));
    assert!(!ks.contains(&fx.manifest.get("tcp4-timewait").key()));
}

#[test]
fn all_states() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-a", "-n"], |_| true);
}

#[test]
fn state_filters() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-n", "state", "established"], |s| {
        s.state == "established"
    });
    expect(
        &fx,
        &["-n", "state", "time-wait"],
        named(&["tcp4-timewait"]),
    );
    expect(
        &fx,
        &["-n", "state", "close-wait", "state", "fin-wait-2"],
        named(&["tcp4-closewait-server", "tcp4-finwait2-orphan"]),
    );
    expect(&fx, &["-n", "-t", "state", "listening"], |s| {
        s.proto == "tcp" && s.state == "listening"
    });
    // `exclude` starts from all states, not from the default set.
    expect(
        &fx,
        &["-n", "exclude", "listening", "exclude", "closed"],
        |s| s.state != "listening" && s.state != "closed",
    );
}

#[test]
fn port_filters() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    // The five clients waiting in tcp4-listener's accept queue.
    expect(&fx, &["-t", "-n", "dport", "=", ":5000"], |s| {
        s.name.starts_with("tcp4-unaccepted-client-")
    });
    // Their server ends (inode 0), and with -a the listener too.
    expect(&fx, &["-t", "-a", "-n", "sport", "=", ":5000"], |s| {
        s.name.starts_with("tcp4-unaccepted-server-") || s.name == "tcp4-listener"
    });
    expect(
        &fx,
        &[
            "-n",
            "state",
            "established",
            "( dport = :5001 or sport = :5001 )",
        ],
        named(&["tcp4-estab-client", "tcp4-estab-server"]),
    );
    expect(
        &fx,
        &["-a", "-n", "-u", "sport", ">", ":5004"],
        named(&["udp4-connected"]),
    );
}

#[test]
fn exclusion_with_not() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-t", "-n", "not", "dport", "=", ":5000"], |s| {
        s.proto == "tcp" && !NOT_DEFAULT.contains(&s.state.as_str()) && s.peer_port() != Some(5000)
    });
    expect(&fx, &["-t", "-l", "-n", "!", "sport", "=", ":5000"], |s| {
        s.proto == "tcp" && s.state == "listening" && s.local_port() != Some(5000)
    });
}

#[test]
fn address_filters() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let v6pair = named(&["tcp6-estab-client", "tcp6-estab-server"]);
    expect(&fx, &["-a", "-n", "src", "[::1]"], &v6pair);
    expect(
        &fx,
        &["-a", "-n", "src", "[::1]:5002"],
        named(&["tcp6-estab-server"]),
    );
    expect(
        &fx,
        &["-a", "-n", "-4", "dst", "127.0.0.1:5003"],
        named(&["tcp4-mapped-client"]),
    );
    // IPv4-mapped addresses (the design in query/expr.rs): an IPv4 address
    // also matches its mapped form, and a mapped address the plain IPv4 one.
    expect(
        &fx,
        &["-a", "-n", "dst", "127.0.0.1", "sport", "=", ":5003"],
        named(&["tcp6-mapped-server"]),
    );
    expect(
        &fx,
        &["-a", "-n", "-6", "dst", "127.0.0.1"],
        named(&["tcp6-mapped-server"]),
    );
    expect(&fx, &["-a", "-n", "dst", "[::ffff:127.0.0.1]"], |s| {
        let a = s
            .peer
            .get("addr")
            .and_then(|a| a.as_str())
            .map(common::canon_addr);
        matches!(a.as_deref(), Some("127.0.0.1" | "::ffff:127.0.0.1"))
    });
}

#[test]
fn bare_ipv6_source_address() {
    if root::skip_without_root() {
        return;
    }
    // `src ::1` without brackets: a string that is a whole IPv6 address is
    // that address (ss itself rejects this form).
    let fx = Fixture::start();
    expect(
        &fx,
        &["-a", "-n", "src", "::1"],
        named(&["tcp6-estab-client", "tcp6-estab-server"]),
    );
}

#[test]
fn unix_path_filter() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let path = format!("{}/listen.sock", fx.manifest.tmpdir);
    expect(
        &fx,
        &["-x", "-a", "-n", "src", &path],
        named(&["unix-path-listener", "unix-path-server"]),
    );
    expect(
        &fx,
        &["-x", "-a", "-n", "src", "@sockscope-fixture"],
        named(&["unix-abstract-dgram"]),
    );
}

#[test]
fn process_filters() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let child = fx.manifest.child_pid.to_string();
    expect(
        &fx,
        &["-a", "-n", "-p", "pid", "=", &child],
        named(&["tcp4-shared-listener"]),
    );
    let pid = fx.pid_str();
    expect(&fx, &["-a", "-n", "-p", "pid", "=", &pid], |s| s.inode != 0);
    expect(&fx, &["-a", "-n", "-p", "comm", "=", "python3"], |s| {
        s.inode != 0
    });
    let run = fx.ls(&["-a", "-n", "-p", "comm", "=", "no-such-comm"]);
    run.expect_code(1);
}

#[test]
fn uid_and_inode_filters() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-x", "-a", "-n", "uid", "=", "0"], MSocket::is_unix);
    let ino = fx.manifest.get("tcp4-listener").inode.to_string();
    expect(
        &fx,
        &["-a", "-n", "inode", "=", &ino],
        named(&["tcp4-listener"]),
    );
    fx.ls(&["-x", "-a", "-n", "uid", "=", "65534"])
        .expect_code(1);
}

#[test]
fn kind_and_family_flags() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    expect(&fx, &["-t", "-a", "-n"], |s| s.proto == "tcp");
    expect(&fx, &["-u", "-a", "-n"], |s| s.proto == "udp");
    expect(&fx, &["-w", "-a", "-n"], |s| s.proto == "raw");
    expect(&fx, &["-x", "-a", "-n"], MSocket::is_unix);
    expect(&fx, &["-4", "-a", "-n"], |s| s.family == "inet");
    expect(&fx, &["-6", "-a", "-n"], |s| s.family == "inet6");
    expect(&fx, &["-t", "-6", "-a", "-n"], |s| {
        s.family == "inet6" && s.proto == "tcp"
    });
    // -x ignores -4/-6.
    expect(&fx, &["-x", "-4", "-a", "-n"], MSocket::is_unix);
    expect(&fx, &["-u", "-x", "-l", "-n"], |s| {
        (s.proto == "udp" || s.is_unix()) && (s.state == "listening" || s.state == "closed")
    });
}

#[test]
fn nothing_matched_exits_1() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    for json in [false, true] {
        let mut args = vec!["-a", "-n"];
        if json {
            args.push("--json");
        }
        args.extend(["dport", "=", ":6000"]);
        let run = fx.ls(&args);
        run.expect_code(1);
        if json {
            let out = run.stdout.trim();
            assert!(
                out.is_empty() || out == "[]",
                "--json with no match prints nothing or []: {out:?}"
            );
        }
    }
    // No established UDP socket on port 5004's side.
    fx.ls(&["-u", "-n", "sport", "=", ":5004"]).expect_code(1);
}

/// A filter that names one local port has the kernel read that port's
/// sockets alone (as ss does with its filters): each source, and both the
/// streamed and the sorted listing, still select exactly the fixture's
/// sockets on the port, with the same owners as a filter meaning the same
/// that the kernel is not given (a range of one port).
#[test]
fn one_local_port_is_asked_of_the_kernel_with_the_same_answer() {
    if root::skip_without_root() {
        return;
    }
    let fx = Fixture::start();
    let owners = |list: &[serde_json::Value]| -> Vec<(String, String)> {
        let mut v: Vec<_> = list
            .iter()
            .map(|s| (common::key_of(s), s["owners"].to_string()))
            .collect();
        v.sort();
        v
    };
    for source in ["netlink", "bpf", "proc"] {
        for sort in [&[][..], &["--sort", "rq"][..]] {
            let with = |filter: &[&'static str]| -> Vec<&'static str> {
                let mut args = vec!["-t", "-u", "-a", "-n", "-p", "--source", source];
                args.extend_from_slice(sort);
                args.extend_from_slice(filter);
                args
            };
            let pushed = with(&["sport", "=", ":5000"]);
            expect(&fx, &pushed, |s| {
                s.local_port() == Some(5000) && matches!(s.proto.as_str(), "tcp" | "udp")
            });
            let same = with(&["sport", ">=", ":5000", "and", "sport", "<=", ":5000"]);
            assert_eq!(
                owners(&fx.ls_json(&pushed)),
                owners(&fx.ls_json(&same)),
                "owners with {pushed:?}"
            );
            expect(
                &fx,
                &with(&["src", "[::1]:5002", "and", "state", "established"]),
                named(&["tcp6-estab-server"]),
            );
        }
    }
}
