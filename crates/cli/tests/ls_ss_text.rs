//! Text columns printed the way ss prints them, for sockets bound to an
//! interface (`0.0.0.0%d0:7400`, `[fe80::…]%d0:7402`) and raw IPv6 sockets
//! on the unspecified address (`*:58`). Compared with ss in the same
//! private namespace.

#[path = "common/root.rs"]
mod root;

mod common;

use common::Scene;

const SCRIPT: &str = r#"
import socket, sys, time
SO_BINDTODEVICE = 25
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, b"d0")
u.bind(("0.0.0.0", 7400))
v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, b"d0")
v.bind(("fe80::5c0:1", 7402, 0, socket.if_nametoindex("d0")))
r = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
a, b = socket.socketpair()
a.send(b"x" * 100)
open(sys.argv[1], "w").write("ready")
time.sleep(3600)
"#;

#[test]
fn bound_devices_and_raw_v6_as_ss_prints_them() {
    if root::skip_without_root() {
        return;
    }
    let flag = std::env::temp_dir().join(format!("sockscope-scope-{}", std::process::id()));
    let _ = std::fs::remove_file(&flag);
    let f = flag.to_str().unwrap().to_string();
    // No dummy driver here (no modules): a veth pair. nodad: the
    // link-local address is usable at once.
    let setup = format!(
        "ip link add d0 type veth peer name d1 && ip link set d0 up && ip link set d1 up && \
         ip -6 addr add fe80::5c0:1/64 dev d0 nodad && exec python3 -c '{SCRIPT}' {f}"
    );
    let sc = Scene::start_command(&["sh", "-c", &setup], "its sockets", |_| {
        std::path::Path::new(&f).exists()
    });
    let _ = std::fs::remove_file(&flag);

    let ss = sc.nsenter(&["ss", "-uwanH"]);
    ss.expect_code(0);
    let ours = sc.sockscope("ls", &["-uwanH"]);
    ours.expect_code(0);
    // Compare the local address column of each row, as a set.
    let locals = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let (theirs, mine) = (locals(&ss.stdout), locals(&ours.stdout));
    assert!(
        theirs.contains(&"0.0.0.0%d0:7400".to_string()),
        "ss: {theirs:?}"
    );
    assert!(
        theirs.contains(&"[fe80::5c0:1]%d0:7402".to_string()),
        "ss: {theirs:?}"
    );
    assert_eq!(
        mine, theirs,
        "ss:\n{}\nsockscope:\n{}",
        ss.stdout, ours.stdout
    );
    // -m shows socket memory for UNIX sockets too, as ss does.
    let count = |t: &str| t.matches("skmem:(").count();
    let ss_x = sc.nsenter(&["ss", "-xmH"]);
    let ours_x = sc.sockscope("ls", &["-xmH"]);
    ours_x.expect_code(0);
    assert_eq!(count(&ss_x.stdout), 2, "ss:\n{}", ss_x.stdout);
    assert_eq!(
        count(&ours_x.stdout),
        count(&ss_x.stdout),
        "ss:\n{}\nsockscope:\n{}",
        ss_x.stdout,
        ours_x.stdout
    );
    // JSON keeps the index and adds the name.
    let list = sc.sockscope("ls", &["-uan", "--json"]).json_array();
    let v = list
        .iter()
        .find(|v| v["local"]["port"] == 7400)
        .expect("the bound socket");
    assert_eq!(v["bound_ifname"], "d0");
    assert!(v["bound_ifindex"].as_u64().is_some());
}
