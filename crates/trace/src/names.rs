//! Names for the numbers events carry: drop and reset reasons (read from
//! the running kernel's BTF, because their values change between kernel
//! versions), errno values, socket options, socket types and shutdown
//! modes.
//!
//! The BTF reader walks the type section of /sys/kernel/btf/vmlinux
//! (format: Documentation/bpf/btf.rst) and keeps only the two enums it is
//! asked for; it never panics on a malformed file, it just finds nothing.

use std::collections::HashMap;

/// Reason names by value, from the kernel's enums.
#[derive(Clone, Debug, Default)]
pub struct Reasons {
    /// `enum skb_drop_reason`, without the `SKB_DROP_REASON_` prefix.
    pub drop: HashMap<u32, String>,
    /// `enum sk_rst_reason`, without the `SK_RST_REASON_` prefix.
    pub reset: HashMap<u32, String>,
}

impl Reasons {
    /// Read from the running kernel; empty maps when BTF is unreadable.
    pub fn from_kernel() -> Reasons {
        match std::fs::read(crate::loader::VMLINUX_BTF) {
            Ok(b) => Reasons::from_btf(&b),
            Err(_) => Reasons::default(),
        }
    }

    pub fn from_btf(btf: &[u8]) -> Reasons {
        let enums = btf_enums(btf, &["skb_drop_reason", "sk_rst_reason"]);
        let strip = |name: &str, prefix: &str| -> HashMap<u32, String> {
            enums
                .get(name)
                .map(|v| {
                    v.iter()
                        .map(|(val, n)| {
                            (*val as u32, n.strip_prefix(prefix).unwrap_or(n).to_string())
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        Reasons {
            drop: strip("skb_drop_reason", "SKB_DROP_REASON_"),
            reset: strip("sk_rst_reason", "SK_RST_REASON_"),
        }
    }

    pub fn drop_name(&self, v: u32) -> String {
        self.drop
            .get(&v)
            .cloned()
            .unwrap_or_else(|| format!("REASON_{v}"))
    }
    pub fn reset_name(&self, v: u32) -> String {
        self.reset
            .get(&v)
            .cloned()
            .unwrap_or_else(|| format!("REASON_{v}"))
    }
}

fn rd32(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn cstr(b: &[u8], o: usize) -> Option<&str> {
    let s = b.get(o..)?;
    let end = s.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&s[..end]).ok()
}

/// The members of the named enums (ENUM and ENUM64 kinds) in a raw BTF
/// blob, as (value, member name).
pub fn btf_enums(b: &[u8], wanted: &[&str]) -> HashMap<String, Vec<(i64, String)>> {
    let mut out = HashMap::new();
    // struct btf_header
    if b.len() < 24 || b[0..2] != [0x9f, 0xeb] {
        return out;
    }
    let (Some(hdr_len), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) = (
        rd32(b, 4),
        rd32(b, 8),
        rd32(b, 12),
        rd32(b, 16),
        rd32(b, 20),
    ) else {
        return out;
    };
    let (hdr_len, type_off, type_len) = (hdr_len as usize, type_off as usize, type_len as usize);
    let (str_off, str_len) = (str_off as usize, str_len as usize);
    let Some(types) = b.get(hdr_len + type_off..hdr_len + type_off + type_len) else {
        return out;
    };
    let Some(strs) = b.get(hdr_len + str_off..hdr_len + str_off + str_len) else {
        return out;
    };
    let mut o = 0usize;
    while o + 12 <= types.len() {
        let (Some(name_off), Some(info)) = (rd32(types, o), rd32(types, o + 4)) else {
            break;
        };
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        let kind_flag = info >> 31 == 1;
        o += 12;
        let extra = match kind {
            1 | 14 | 17 => 4,          // INT, VAR, DECL_TAG
            3 => 12,                   // ARRAY
            4 | 5 | 15 => vlen * 12,   // STRUCT, UNION, DATASEC
            6 | 13 => vlen * 8,        // ENUM, FUNC_PROTO
            19 => vlen * 12,           // ENUM64
            2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF.., FUNC, FLOAT, TYPE_TAG
            _ => return out,           // unknown kind: cannot skip it
        };
        if (kind == 6 || kind == 19)
            && let Some(name) = cstr(strs, name_off as usize)
            && wanted.contains(&name)
        {
            let step = if kind == 6 { 8 } else { 12 };
            let mut members = Vec::with_capacity(vlen);
            for i in 0..vlen {
                let m = o + i * step;
                let (Some(n), Some(lo)) = (rd32(types, m), rd32(types, m + 4)) else {
                    break;
                };
                let val = if kind == 6 {
                    if kind_flag {
                        i64::from(lo as i32)
                    } else {
                        i64::from(lo)
                    }
                } else {
                    let hi = rd32(types, m + 8).unwrap_or(0);
                    ((u64::from(hi) << 32) | u64::from(lo)) as i64
                };
                if let Some(s) = cstr(strs, n as usize) {
                    members.push((val, s.to_string()));
                }
            }
            out.insert(name.to_string(), members);
        }
        o += extra;
    }
    out
}

/// Call `f(id, kind, name, vlen, size_or_type)` for each type of a raw
/// BTF blob, in id order, until it returns true. Nothing on a malformed
/// blob (or from where it stops making sense).
fn btf_walk(b: &[u8], mut f: impl FnMut(u32, u32, Option<&str>, usize, u32) -> bool) {
    if b.len() < 24 || b[0..2] != [0x9f, 0xeb] {
        return;
    }
    let (Some(hdr_len), Some(type_off), Some(type_len), Some(str_off), Some(str_len)) = (
        rd32(b, 4),
        rd32(b, 8),
        rd32(b, 12),
        rd32(b, 16),
        rd32(b, 20),
    ) else {
        return;
    };
    let (hdr_len, type_off, type_len) = (hdr_len as usize, type_off as usize, type_len as usize);
    let (str_off, str_len) = (str_off as usize, str_len as usize);
    let Some(types) = b.get(hdr_len + type_off..hdr_len + type_off + type_len) else {
        return;
    };
    let Some(strs) = b.get(hdr_len + str_off..hdr_len + str_off + str_len) else {
        return;
    };
    let mut o = 0usize;
    let mut id = 1u32;
    while o + 12 <= types.len() {
        let (Some(name_off), Some(info), Some(st)) =
            (rd32(types, o), rd32(types, o + 4), rd32(types, o + 8))
        else {
            return;
        };
        let vlen = (info & 0xffff) as usize;
        let kind = (info >> 24) & 0x1f;
        o += 12;
        o += match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 => vlen * 12,
            6 | 13 => vlen * 8,
            19 => vlen * 12,
            2 | 7..=12 | 16 | 18 => 0,
            _ => return,
        };
        let name = if name_off == 0 {
            None
        } else {
            cstr(strs, name_off as usize)
        };
        if f(id, kind, name, vlen, st) {
            return;
        }
        id += 1;
    }
}

/// How many arguments tracepoint `name` hands a tp_btf program (its
/// `btf_trace_NAME` typedef: a pointer to a function whose first
/// parameter is the tracepoint's private data, not an argument). None
/// when the blob does not have it. Tracepoints gain arguments between
/// kernels (tcp_retransmit_skb has `err` in newer ones), and a program may not
/// read one the kernel does not pass.
pub fn tracepoint_args(b: &[u8], name: &str) -> Option<usize> {
    let typedef = format!("btf_trace_{name}");
    let mut want = None;
    btf_walk(b, |_, kind, n, _, ty| {
        if kind == 8 && n == Some(typedef.as_str()) {
            want = Some(ty);
            return true;
        }
        false
    });
    // typedef -> pointer -> function prototype: (kind, type, vlen) of an id.
    let by_id = |want_id: u32| {
        let mut found = None;
        btf_walk(b, |id, kind, _, vlen, ty| {
            if id == want_id {
                found = Some((kind, ty, vlen));
                return true;
            }
            false
        });
        found
    };
    let (kind, proto, _) = by_id(want?)?;
    if kind != 2 {
        return None;
    }
    let (kind, _, vlen) = by_id(proto)?;
    (kind == 13).then(|| vlen.saturating_sub(1))
}

/// errno name, e.g. 104 -> "ECONNRESET".
pub fn errno_name(e: i64) -> Option<&'static str> {
    let n = i32::try_from(e).ok()?;
    Some(match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::EPIPE => "EPIPE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EPROTOTYPE => "EPROTOTYPE",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETDOWN => "ENETDOWN",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOBUFS => "ENOBUFS",
        libc::EISCONN => "EISCONN",
        libc::ENOTCONN => "ENOTCONN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        _ => return None,
    })
}

/// `-ECONNRESET` style text for a negative return value.
pub fn errno_text(ret: i64) -> String {
    match errno_name(-ret) {
        Some(n) => format!("-{n}"),
        None => ret.to_string(),
    }
}

/// Address family argument of socket().
pub fn family_name(f: u64) -> String {
    match f {
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        1 => "AF_UNIX".into(),
        n => n.to_string(),
    }
}

/// Type argument of socket(), with its flags.
pub fn socket_type_name(t: u64) -> String {
    const NONBLOCK: u64 = 0o4000;
    const CLOEXEC: u64 = 0o2000000;
    let base = match t & 0xf {
        1 => "SOCK_STREAM".to_string(),
        2 => "SOCK_DGRAM".to_string(),
        3 => "SOCK_RAW".to_string(),
        5 => "SOCK_SEQPACKET".to_string(),
        n => n.to_string(),
    };
    let mut s = base;
    if t & NONBLOCK != 0 {
        s.push_str("|SOCK_NONBLOCK");
    }
    if t & CLOEXEC != 0 {
        s.push_str("|SOCK_CLOEXEC");
    }
    s
}

/// Flags argument of accept4().
pub fn accept_flags_name(f: u64) -> String {
    let mut v = Vec::new();
    if f & 0o4000 != 0 {
        v.push("SOCK_NONBLOCK");
    }
    if f & 0o2000000 != 0 {
        v.push("SOCK_CLOEXEC");
    }
    if v.is_empty() {
        f.to_string()
    } else {
        v.join("|")
    }
}

/// How argument of shutdown().
pub fn shutdown_name(how: u64) -> String {
    match how {
        0 => "SHUT_RD".into(),
        1 => "SHUT_WR".into(),
        2 => "SHUT_RDWR".into(),
        n => n.to_string(),
    }
}

/// Level of setsockopt().
pub fn sockopt_level_name(level: u64) -> String {
    match level {
        1 => "SOL_SOCKET".into(),
        0 => "IPPROTO_IP".into(),
        6 => "IPPROTO_TCP".into(),
        17 => "IPPROTO_UDP".into(),
        41 => "IPPROTO_IPV6".into(),
        n => n.to_string(),
    }
}

/// Option name of setsockopt() at a level (include/uapi/asm-generic/socket.h,
/// include/uapi/linux/tcp.h, in.h, in6.h).
pub fn sockopt_name(level: u64, opt: u64) -> String {
    let n = match (level, opt) {
        (1, 2) => "SO_REUSEADDR",
        (1, 6) => "SO_BROADCAST",
        (1, 7) => "SO_SNDBUF",
        (1, 8) => "SO_RCVBUF",
        (1, 9) => "SO_KEEPALIVE",
        (1, 12) => "SO_PRIORITY",
        (1, 13) => "SO_LINGER",
        (1, 15) => "SO_REUSEPORT",
        (1, 20) | (1, 66) => "SO_RCVTIMEO",
        (1, 21) | (1, 67) => "SO_SNDTIMEO",
        (1, 25) => "SO_BINDTODEVICE",
        (1, 36) => "SO_MARK",
        (1, 46) => "SO_BUSY_POLL",
        (1, 49) => "SO_INCOMING_CPU",
        (1, 60) => "SO_ZEROCOPY",
        (6, 1) => "TCP_NODELAY",
        (6, 2) => "TCP_MAXSEG",
        (6, 3) => "TCP_CORK",
        (6, 4) => "TCP_KEEPIDLE",
        (6, 5) => "TCP_KEEPINTVL",
        (6, 6) => "TCP_KEEPCNT",
        (6, 7) => "TCP_SYNCNT",
        (6, 8) => "TCP_LINGER2",
        (6, 9) => "TCP_DEFER_ACCEPT",
        (6, 10) => "TCP_WINDOW_CLAMP",
        (6, 12) => "TCP_QUICKACK",
        (6, 13) => "TCP_CONGESTION",
        (6, 18) => "TCP_USER_TIMEOUT",
        (6, 23) => "TCP_FASTOPEN",
        (6, 25) => "TCP_NOTSENT_LOWAT",
        (6, 30) => "TCP_FASTOPEN_CONNECT",
        (0, 1) => "IP_TOS",
        (0, 2) => "IP_TTL",
        (0, 11) => "IP_RECVERR",
        (0, 15) => "IP_FREEBIND",
        (0, 19) => "IP_TRANSPARENT",
        (0, 24) => "IP_BIND_ADDRESS_NO_PORT",
        (41, 25) => "IPV6_RECVERR",
        (41, 26) => "IPV6_V6ONLY",
        (41, 67) => "IPV6_TCLASS",
        _ => return opt.to_string(),
    };
    n.to_string()
}

/// The value of a setsockopt() call as text, when we read it: SO_LINGER is
/// `{onoff, linger}`, the rest are ints.
pub fn sockopt_value(level: u64, opt: u64, raw: u64, optlen: u16) -> String {
    if (level, opt) == (1, 13) && optlen >= 8 {
        let onoff = raw as u32 as i32;
        let secs = (raw >> 32) as u32 as i32;
        return format!("{{l_onoff={onoff}, l_linger={secs}}}");
    }
    if optlen >= 4 {
        return (raw as u32 as i32).to_string();
    }
    "…".into()
}

/// TCP header flags as text: "SYN|ACK". Every packet event carries them,
/// so the 256 texts are made once and shared (no allocation per event).
pub fn tcp_flags(f: u8) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| {
        (0..=255u8)
            .map(|f| &*Box::leak(tcp_flags_text(f).into_boxed_str()))
            .collect()
    })[usize::from(f)]
}

fn tcp_flags_text(f: u8) -> String {
    const NAMES: [(u8, &str); 6] = [
        (0x02, "SYN"),
        (0x10, "ACK"),
        (0x01, "FIN"),
        (0x04, "RST"),
        (0x08, "PSH"),
        (0x20, "URG"),
    ];
    let v: Vec<&str> = NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect();
    v.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BTF data: the header (magic, version 1, 24 bytes), then the type
    /// section `types` and the string section `strs`.
    fn btf_of(types: &[u8], strs: &[u8]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for v in [24, 0, types.len(), types.len(), strs.len()] {
            b.extend_from_slice(&(v as u32).to_le_bytes());
        }
        b.extend_from_slice(types);
        b.extend_from_slice(strs);
        b
    }

    /// A BTF blob with an INT, an ENUM "e1" {A=1, B=-2 (signed)}, a
    /// STRUCT with one member, and an ENUM64 "e2" {BIG=2^40}.
    fn blob() -> Vec<u8> {
        let strs = b"\0int\0e1\0X_A\0X_B\0s\0m\0e2\0Y_BIG\0".to_vec();
        let off = |s: &[u8], needle: &str| -> u32 {
            let n = needle.as_bytes();
            (0..s.len())
                .find(|&i| s[i..].starts_with(n) && (i == 0 || s[i - 1] == 0))
                .unwrap() as u32
        };
        let mut t = Vec::new();
        let push = |t: &mut Vec<u8>, v: u32| t.extend_from_slice(&v.to_le_bytes());
        // INT "int": info kind 1, size 4, then u32 encoding
        push(&mut t, off(&strs, "int"));
        push(&mut t, 1 << 24);
        push(&mut t, 4);
        push(&mut t, 32);
        // ENUM "e1", signed (kind_flag), 2 members
        push(&mut t, off(&strs, "e1"));
        push(&mut t, (1 << 31) | (6 << 24) | 2);
        push(&mut t, 4);
        push(&mut t, off(&strs, "X_A"));
        push(&mut t, 1);
        push(&mut t, off(&strs, "X_B"));
        push(&mut t, (-2i32) as u32);
        // STRUCT "s" with one member
        push(&mut t, off(&strs, "s"));
        push(&mut t, (4 << 24) | 1);
        push(&mut t, 4);
        push(&mut t, off(&strs, "m"));
        push(&mut t, 1);
        push(&mut t, 0);
        // ENUM64 "e2"
        push(&mut t, off(&strs, "e2"));
        push(&mut t, (19 << 24) | 1);
        push(&mut t, 8);
        push(&mut t, off(&strs, "Y_BIG"));
        push(&mut t, 0);
        push(&mut t, 1 << 8);
        btf_of(&t, &strs)
    }

    #[test]
    fn reads_enums_from_btf() {
        let e = btf_enums(&blob(), &["e1", "e2"]);
        assert_eq!(
            e["e1"],
            vec![(1, "X_A".to_string()), (-2, "X_B".to_string())]
        );
        assert_eq!(e["e2"], vec![(1 << 40, "Y_BIG".to_string())]);
        assert!(btf_enums(&blob(), &["nope"]).is_empty());
    }

    #[test]
    fn malformed_btf_gives_nothing() {
        assert!(btf_enums(b"", &["e1"]).is_empty());
        assert!(btf_enums(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0], &["e1"]).is_empty());
        let mut b = blob();
        b.truncate(40);
        assert!(btf_enums(&b, &["e1"]).is_empty());
    }

    #[test]
    fn tracepoint_arguments_from_the_typedef() {
        // [1] INT, [2] PTR -> 1, [3] FUNC_PROTO (ctx, a, b), [4] PTR -> 3,
        // [5] TYPEDEF btf_trace_tp -> 4
        let strs = b"\0int\0btf_trace_tp\0".to_vec();
        let mut t = Vec::new();
        let push = |t: &mut Vec<u8>, v: u32| t.extend_from_slice(&v.to_le_bytes());
        push(&mut t, 1);
        push(&mut t, 1 << 24);
        push(&mut t, 4);
        push(&mut t, 32);
        push(&mut t, 0);
        push(&mut t, 2 << 24);
        push(&mut t, 1);
        push(&mut t, 0);
        push(&mut t, (13 << 24) | 3);
        push(&mut t, 0);
        for _ in 0..3 {
            push(&mut t, 0);
            push(&mut t, 2);
        }
        push(&mut t, 0);
        push(&mut t, 2 << 24);
        push(&mut t, 3);
        push(&mut t, 5);
        push(&mut t, 8 << 24);
        push(&mut t, 4);
        let b = btf_of(&t, &strs);
        assert_eq!(tracepoint_args(&b, "tp"), Some(2));
        assert_eq!(tracepoint_args(&b, "other"), None);
        assert_eq!(tracepoint_args(&b[..40], "tp"), None);
        // The running kernel: kfree_skb passes at least skb, location,
        // reason.
        if let Ok(k) = std::fs::read(crate::loader::VMLINUX_BTF) {
            assert!(tracepoint_args(&k, "kfree_skb").is_some_and(|n| n >= 3));
            assert!(tracepoint_args(&k, "tcp_retransmit_skb").is_some_and(|n| n >= 2));
        }
    }

    #[test]
    fn running_kernel_names_the_reasons() {
        // The machines this runs on have BTF (tests need it for trace).
        let r = Reasons::from_kernel();
        if r.drop.is_empty() {
            return; // no BTF here: nothing to check
        }
        assert_eq!(r.drop.get(&3).map(String::as_str), Some("NO_SOCKET"));
        assert!(
            r.drop
                .values()
                .any(|n| n == "TCP_LISTEN_OVERFLOW" || n == "NETFILTER_DROP")
        );
    }

    #[test]
    fn small_names() {
        assert_eq!(errno_text(-104), "-ECONNRESET");
        assert_eq!(errno_text(-11), "-EAGAIN");
        assert_eq!(errno_text(-9999), "-9999");
        assert_eq!(
            socket_type_name(1 | 0o4000 | 0o2000000),
            "SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC"
        );
        assert_eq!(sockopt_name(1, 13), "SO_LINGER");
        assert_eq!(sockopt_name(6, 1), "TCP_NODELAY");
        assert_eq!(sockopt_name(99, 5), "5");
        assert_eq!(sockopt_value(1, 13, 1, 8), "{l_onoff=1, l_linger=0}");
        assert_eq!(sockopt_value(1, 2, 1, 4), "1");
        assert_eq!(tcp_flags(0x12), "SYN|ACK");
        assert_eq!(shutdown_name(1), "SHUT_WR");
        assert_eq!(accept_flags_name(0o4000), "SOCK_NONBLOCK");
    }
}
