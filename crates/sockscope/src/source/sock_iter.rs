//! The TCP and UDP socket tables through BPF iterators (`iter/tcp`,
//! `iter/udp`): the kernel walks its hash tables once (TCP: listening,
//! then established) and the program writes one fixed-size record per
//! socket into the iterator's output, read here in large reads. For UDP
//! the program takes the `udp_sock` the iterator hands it and fills the
//! queues as udp_diag does (no timers). It gives the same rows and fields as
//! netlink's inet_diag dump without extensions (see `sock_diag`): state,
//! addresses, ports, queues (accept queue and backlog for listeners), uid,
//! inode, cookie, timer, bound interface, shutdown, v6only, cgroup.
//!
//! As for the owner iterator (`owners_bpf`), the program is assembled here
//! with struct offsets from the kernel's BTF; the state mask, the address
//! family and the local port are applied in the program, so filtered-out
//! sockets are never copied out. The iterator walks the network namespace
//! of the thread that creates it. In C it would read:
//!
//! ```c
//! SEC("iter/tcp")
//! int tcp(struct bpf_iter__tcp *ctx) {
//!     struct sock_common *skc = ctx->sk_common;
//!     if (!skc || !((1 << skc->skc_state) & STATES)) return 0;
//!     /* family and local port filters */
//!     struct rec r = { .cookie = bpf_get_socket_cookie(skc), .family = .., .addrs = .., .ports = .. };
//!     if (skc->skc_state == TCP_TIME_WAIT) {
//!         struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
//!         r.state = tw->tw_sk.tw_substate; r.timer = 3; r.expires = tw->tw_sk.tw_timer.expires;
//!     } else if (skc->skc_state == TCP_NEW_SYN_RECV) {
//!         struct tcp_request_sock *req = bpf_skc_to_tcp_request_sock(skc);
//!         r.state = TCP_SYN_RECV; r.timer = 1; r.retrans = req->req.req.num_retrans; ..
//!     } else {
//!         struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
//!         /* uid, inode, shutdown, v6only, cgroup id, queues, timer as tcp_diag */
//!     }
//!     r.now = bpf_jiffies64();
//!     bpf_seq_write(ctx->meta->seq, &r, sizeof r);
//!     return 0;
//! }
//! ```
//!
//! It needs CAP_BPF and CAP_PERFMON (or root), BTF, and a kernel with
//! `struct sock`'s `sk_ino` (6.17 or later); `source::collect_here_each`
//! uses netlink where it cannot load.

use super::bpf::asm::*;
use super::bpf::btf::{self, BtfError, Found, Wanted};
use super::bpf::sys::{
    BPF_ITER_CREATE, BPF_LINK_CREATE, BPF_PROG_LOAD, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, bpf,
    put32, put64,
};
use crate::model::{
    Endpoint, Family, Proto, Socket, SourceKind, State, StateSet, Timer, TimerKind,
};
use rustix::fd::{AsRawFd, OwnedFd};
use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Mutex, OnceLock};

/// Size of one record; the layout is in [`decode`].
pub const REC: usize = 104;

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const TCP_SYN_RECV: i32 = 3;
const TCP_TIME_WAIT: i32 = 6;
const TCP_LISTEN: i32 = 10;
const TCP_NEW_SYN_RECV: i32 = 12;

#[derive(Clone, Debug, thiserror::Error)]
pub enum IterError {
    #[error("kernel BTF unusable: {0}")]
    Btf(String),
    #[error("loading the socket iterator failed (needs CAP_BPF and CAP_PERFMON): {0}")]
    Load(String),
    #[error("reading the socket iterator: {0}")]
    Read(String),
}

/// What the program keeps: its filters are part of the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Kernel state bits (`1 << sk_state`): time-wait sockets are kept by
    /// the bit of their substate (TIME_WAIT or FIN_WAIT2), request sockets
    /// by SYN_RECV or NEW_SYN_RECV, as inet_diag keeps them.
    pub states: u32,
    pub ipv4: bool,
    pub ipv6: bool,
    pub local_port: Option<u16>,
    /// UDP (`iter/udp`) rather than TCP (`iter/tcp`).
    pub udp: bool,
}

impl Filter {
    pub fn new(states: StateSet, ipv4: bool, ipv6: bool, local_port: Option<u16>) -> Filter {
        let mut bits = states.0;
        if bits & ((1 << TCP_SYN_RECV) | (1 << TCP_NEW_SYN_RECV)) != 0 {
            bits |= (1 << TCP_SYN_RECV) | (1 << TCP_NEW_SYN_RECV);
        }
        Filter {
            states: bits,
            ipv4,
            ipv6,
            local_port,
            udp: false,
        }
    }

    /// The same filter for the UDP table.
    pub fn udp(mut self) -> Filter {
        self.udp = true;
        self
    }
}

// Instructions the shared assembler does not have.
/// `*(u8 *)(dst + off) = src`
fn stx_b(dst: u8, off: i16, src: u8) -> Insn {
    raw(0x73, dst, src, off, 0)
}
/// `*(u16 *)(dst + off) = src`
fn stx_h(dst: u8, off: i16, src: u8) -> Insn {
    raw(0x6b, dst, src, off, 0)
}
/// `dst = (u32)(dst - src)`
fn sub32_reg(dst: u8, src: u8) -> Insn {
    raw(0x1c, dst, src, 0, 0)
}
/// `dst = (u32)(dst + imm)`
fn add32_imm(dst: u8, imm: i32) -> Insn {
    raw(0x04, dst, 0, 0, imm)
}
/// `dst <<= src`
fn lsh_reg(dst: u8, src: u8) -> Insn {
    raw(0x6f, dst, src, 0, 0)
}

/// Struct offsets the program needs, from BTF.
#[derive(Clone, Debug, Default)]
struct Offsets {
    meta_seq: u32,
    // struct sock_common
    daddr: u32,
    rcv_saddr: u32,
    dport: u32,
    num: u32,
    family: u32,
    state: u32,
    bound_dev_if: u32,
    v6_daddr: u32,
    v6_rcv_saddr: u32,
    /// Byte and bit of the `skc_ipv6only` bitfield.
    ipv6only_byte: u32,
    ipv6only_bit: u32,
    // struct tcp_sock, with the nested sock and inet_connection_sock
    sk_ack_backlog: u32,
    sk_max_ack_backlog: u32,
    sk_shutdown: u32,
    sk_ino: u32,
    sk_timer_pprev: u32,
    sk_timer_expires: u32,
    sk_cgroup: u32,
    icsk_pending: u32,
    icsk_retransmits: u32,
    icsk_probes_out: u32,
    icsk_rto_expires: u32,
    rcv_nxt: u32,
    copied_seq: u32,
    write_seq: u32,
    snd_una: u32,
    cgroup_kn: u32,
    kn_id: u32,
    // struct tcp_timewait_sock
    tw_substate: u32,
    tw_expires: u32,
    // struct tcp_request_sock
    req_retrans: u32,
    req_expires: u32,
    // struct udp_sock, with the nested sock
    u_ino: u32,
    u_shutdown: u32,
    u_cgroup: u32,
    /// `sk_rmem_alloc`: `sk_backlog.rmem_alloc`, the first member of that
    /// anonymous struct.
    u_rmem: u32,
    u_wmem: u32,
    u_deficit: u32,
}

/// What the programs need from BTF: the members they read (the lists in
/// [`offsets`]) and the iterators they attach to.
const WANT: Wanted = Wanted {
    structs: &[
        ("bpf_iter_meta", &["seq"]),
        (
            "sock_common",
            &[
                "skc_daddr",
                "skc_rcv_saddr",
                "skc_dport",
                "skc_num",
                "skc_family",
                "skc_state",
                "skc_bound_dev_if",
                "skc_v6_daddr",
                "skc_v6_rcv_saddr",
                "skc_ipv6only",
            ],
        ),
        (
            "tcp_sock",
            &["inet_conn", "rcv_nxt", "copied_seq", "write_seq", "snd_una"],
        ),
        (
            "inet_connection_sock",
            &[
                "icsk_inet",
                "icsk_pending",
                "icsk_retransmits",
                "icsk_probes_out",
                "icsk_retransmit_timer",
            ],
        ),
        ("inet_sock", &["sk"]),
        (
            "sock",
            &[
                "__sk_common",
                "sk_ack_backlog",
                "sk_max_ack_backlog",
                "sk_shutdown",
                "sk_ino",
                "sk_timer",
                "sk_cgrp_data",
                "sk_backlog",
                "sk_wmem_alloc",
            ],
        ),
        ("udp_sock", &["inet", "forward_deficit"]),
        ("timer_list", &["entry", "expires"]),
        ("hlist_node", &["pprev"]),
        ("sock_cgroup_data", &["cgroup"]),
        ("cgroup", &["kn"]),
        ("kernfs_node", &["id"]),
        ("tcp_timewait_sock", &["tw_sk"]),
        ("inet_timewait_sock", &["tw_substate", "tw_timer"]),
        ("tcp_request_sock", &["req"]),
        ("inet_request_sock", &["req"]),
        ("request_sock", &["num_retrans", "rsk_timer"]),
    ],
    funcs: &["bpf_iter_tcp", "bpf_iter_udp"],
};

fn offsets(found: &Found) -> Result<Offsets, BtfError> {
    let m = |s: &str, fields: &[&str]| -> Result<HashMap<String, u32>, BtfError> {
        fields
            .iter()
            .map(|f| Ok((f.to_string(), found.offset(s, f)?)))
            .collect()
    };
    let meta = m("bpf_iter_meta", &["seq"])?;
    let skc = m(
        "sock_common",
        &[
            "skc_daddr",
            "skc_rcv_saddr",
            "skc_dport",
            "skc_num",
            "skc_family",
            "skc_state",
            "skc_bound_dev_if",
            "skc_v6_daddr",
            "skc_v6_rcv_saddr",
        ],
    )?;
    let v6only = found.bit_offset("sock_common", "skc_ipv6only")?;
    let tp = m(
        "tcp_sock",
        &["inet_conn", "rcv_nxt", "copied_seq", "write_seq", "snd_una"],
    )?;
    let icsk = m(
        "inet_connection_sock",
        &[
            "icsk_inet",
            "icsk_pending",
            "icsk_retransmits",
            "icsk_probes_out",
            "icsk_retransmit_timer",
        ],
    )?;
    let inet = m("inet_sock", &["sk"])?;
    let sk = m(
        "sock",
        &[
            "sk_ack_backlog",
            "sk_max_ack_backlog",
            "sk_shutdown",
            "sk_ino",
            "sk_timer",
            "sk_cgrp_data",
            "sk_backlog",
            "sk_wmem_alloc",
        ],
    )?;
    let udp = m("udp_sock", &["inet", "forward_deficit"])?;
    // The programs read sock_common's fields at their own offsets from
    // the iterator's pointer: sock_common must lead udp_sock as it leads
    // every sock.
    let u_sk = udp["inet"] + inet["sk"];
    if u_sk != 0 || m("sock", &["__sk_common"])?["__sk_common"] != 0 {
        return Err(BtfError::Missing(
            "struct sock_common at the start of struct udp_sock".into(),
        ));
    }
    let timer = m("timer_list", &["entry", "expires"])?;
    let hnode = m("hlist_node", &["pprev"])?;
    let cgd = m("sock_cgroup_data", &["cgroup"])?;
    let cg = m("cgroup", &["kn"])?;
    let kn = m("kernfs_node", &["id"])?;
    let tcp_tw = m("tcp_timewait_sock", &["tw_sk"])?;
    let tw = m("inet_timewait_sock", &["tw_substate", "tw_timer"])?;
    let treq = m("tcp_request_sock", &["req"])?;
    let ireq = m("inet_request_sock", &["req"])?;
    let rsk = m("request_sock", &["num_retrans", "rsk_timer"])?;
    let icsk_at = tp["inet_conn"];
    let sk_at = icsk_at + icsk["icsk_inet"] + inet["sk"];
    let tw_at = tcp_tw["tw_sk"];
    let req_at = treq["req"] + ireq["req"];
    Ok(Offsets {
        meta_seq: meta["seq"],
        daddr: skc["skc_daddr"],
        rcv_saddr: skc["skc_rcv_saddr"],
        dport: skc["skc_dport"],
        num: skc["skc_num"],
        family: skc["skc_family"],
        state: skc["skc_state"],
        bound_dev_if: skc["skc_bound_dev_if"],
        v6_daddr: skc["skc_v6_daddr"],
        v6_rcv_saddr: skc["skc_v6_rcv_saddr"],
        ipv6only_byte: v6only / 8,
        ipv6only_bit: v6only % 8,
        sk_ack_backlog: sk_at + sk["sk_ack_backlog"],
        sk_max_ack_backlog: sk_at + sk["sk_max_ack_backlog"],
        sk_shutdown: sk_at + sk["sk_shutdown"],
        sk_ino: sk_at + sk["sk_ino"],
        sk_timer_pprev: sk_at + sk["sk_timer"] + timer["entry"] + hnode["pprev"],
        sk_timer_expires: sk_at + sk["sk_timer"] + timer["expires"],
        sk_cgroup: sk_at + sk["sk_cgrp_data"] + cgd["cgroup"],
        icsk_pending: icsk_at + icsk["icsk_pending"],
        icsk_retransmits: icsk_at + icsk["icsk_retransmits"],
        icsk_probes_out: icsk_at + icsk["icsk_probes_out"],
        icsk_rto_expires: icsk_at + icsk["icsk_retransmit_timer"] + timer["expires"],
        rcv_nxt: tp["rcv_nxt"],
        copied_seq: tp["copied_seq"],
        write_seq: tp["write_seq"],
        snd_una: tp["snd_una"],
        cgroup_kn: cg["kn"],
        kn_id: kn["id"],
        tw_substate: tw_at + tw["tw_substate"],
        tw_expires: tw_at + tw["tw_timer"] + timer["expires"],
        req_retrans: req_at + rsk["num_retrans"],
        req_expires: req_at + rsk["rsk_timer"] + timer["expires"],
        u_ino: u_sk + sk["sk_ino"],
        u_shutdown: u_sk + sk["sk_shutdown"],
        u_cgroup: u_sk + sk["sk_cgrp_data"] + cgd["cgroup"],
        u_rmem: u_sk + sk["sk_backlog"],
        u_wmem: u_sk + sk["sk_wmem_alloc"],
        u_deficit: udp["forward_deficit"],
    })
}

// Record layout (offsets from its start, native endian).
const R_COOKIE: i16 = 0; // u64
const R_CGROUP: i16 = 8; // u64, 0 when none
const R_EXPIRES: i16 = 16; // u64, absolute jiffies; 0 without a timer
const R_INODE: i16 = 24; // u64
const R_UID: i16 = 32; // u32
const R_RQ: i16 = 36; // u32
const R_WQ: i16 = 40; // u32
const R_IF: i16 = 44; // u32
const R_FAMILY: i16 = 48; // u16
const R_STATE: i16 = 50; // u8, as netlink reports it
const R_TIMER: i16 = 51; // u8, idiag_timer
const R_RETRANS: i16 = 52; // u8
const R_SHUTDOWN: i16 = 53; // u8
const R_V6ONLY: i16 = 54; // u8
const R_KIND: i16 = 55; // u8: 0 full socket, 1 time-wait, 2 request
const R_SPORT: i16 = 56; // u16, host order
const R_DPORT: i16 = 58; // u16, network order
const R_SRC: i16 = 64; // 16 bytes
const R_DST: i16 = 80; // 16 bytes
const R_NOW: i16 = 96; // u64, jiffies when written

/// The program for `f`. The context is DEFINE_BPF_ITER_FUNC(tcp, meta,
/// sk_common, uid): meta at 0, sk_common at 8, uid (u32) at 16.
fn program(o: &Offsets, f: &Filter) -> Vec<Insn> {
    const CTX_META: u32 = 0;
    const CTX_SK: u32 = 8;
    const CTX_UID: u32 = 16;
    const GET_SOCKET_COOKIE: i32 = 46;
    const JIFFIES64: i32 = 118;
    const SEQ_WRITE: i32 = 127;
    const SKC_TO_TCP_SOCK: i32 = 137;
    const SKC_TO_TCP_TIMEWAIT_SOCK: i32 = 138;
    const SKC_TO_TCP_REQUEST_SOCK: i32 = 139;
    let base = -(REC as i16);
    let at = |field: i16| base + field;
    let mut a = Asm::new();
    // State, uid (the iterator's), inode and shutdown from the socket in
    // `sk` (inode and shutdown at `ino`, `shutdown`), v6only from the
    // sock_common in r7.
    let owner_fields = |a: &mut Asm, sk: u8, ino: u32, shutdown: u32| {
        a.push(&[
            stx_b(R10, at(R_STATE), R9),
            ldx_w(R1, R6, CTX_UID),
            stx_w(R10, at(R_UID), R1),
            ldx_dw(R1, sk, ino),
            stx_dw(R10, at(R_INODE), R1),
            ldx_b(R1, sk, shutdown),
            stx_b(R10, at(R_SHUTDOWN), R1),
            ldx_b(R1, R7, o.ipv6only_byte),
            rsh_imm(R1, o.ipv6only_bit as i32),
            and_imm(R1, 1),
            stx_b(R10, at(R_V6ONLY), R1),
        ]);
    };
    // The cgroup id (its kernfs node's id) of the socket in `sk`, whose
    // cgroup pointer is at `cgroup`; left 0 when there is none.
    let cgroup_id = |a: &mut Asm, sk: u8, cgroup: u32| {
        let none = a.label();
        a.push(&[ldx_dw(R1, sk, cgroup)]);
        a.jeq_imm(R1, 0, none);
        a.push(&[ldx_dw(R1, R1, o.cgroup_kn)]);
        a.jeq_imm(R1, 0, none);
        a.push(&[ldx_dw(R1, R1, o.kn_id), stx_dw(R10, at(R_CGROUP), R1)]);
        a.bind(none);
    };
    let out = a.label();
    let v6 = a.label();
    let addrs_done = a.label();
    let tw = a.label();
    let req = a.label();
    let connected = a.label();
    let rq_ok = a.label();
    let timers = a.label();
    let t_retrans = a.label();
    let t_probe = a.label();
    let expires = a.label();
    let write = a.label();

    // r6 = ctx, r7 = sock_common, r9 = sk_state.
    a.push(&[mov_reg(R6, R1), ldx_dw(R7, R6, CTX_SK)]);
    a.jeq_imm(R7, 0, out);
    // The state filtered on (r8): a time-wait socket's substate, as
    // inet_diag filters it (FIN-WAIT-2 kept by that bit).
    let filter = a.label();
    a.push(&[ldx_b(R9, R7, o.state), mov_reg(R8, R9)]);
    if !f.udp {
        a.jne_imm(R9, TCP_TIME_WAIT, filter);
        a.push(&[mov_reg(R1, R7), call(SKC_TO_TCP_TIMEWAIT_SOCK)]);
        a.jeq_imm(R0, 0, out);
        a.push(&[ldx_b(R8, R0, o.tw_substate)]);
    }
    a.bind(filter);
    a.push(&[
        mov_imm(R1, 1),
        lsh_reg(R1, R8),
        and_imm(R1, f.states as i32),
    ]);
    a.jeq_imm(R1, 0, out);
    a.push(&[ldx_h(R1, R7, o.family)]);
    if !f.ipv4 {
        a.jeq_imm(R1, AF_INET, out);
    }
    if !f.ipv6 {
        a.jeq_imm(R1, AF_INET6, out);
    }
    a.push(&[ldx_h(R2, R7, o.num)]);
    if let Some(p) = f.local_port {
        a.jne_imm(R2, i32::from(p), out);
    }
    // The record, zeroed, at r10 - REC.
    a.push(&[mov_imm(R3, 0)]);
    for i in 0..(REC / 8) as i16 {
        a.push(&[stx_dw(R10, base + 8 * i, R3)]);
    }
    a.push(&[
        stx_h(R10, at(R_FAMILY), R1),
        stx_h(R10, at(R_SPORT), R2),
        ldx_h(R2, R7, o.dport),
        stx_h(R10, at(R_DPORT), R2),
        ldx_w(R2, R7, o.bound_dev_if),
        stx_w(R10, at(R_IF), R2),
    ]);
    a.jeq_imm(R1, AF_INET6, v6);
    a.push(&[
        ldx_w(R2, R7, o.rcv_saddr),
        stx_w(R10, at(R_SRC), R2),
        ldx_w(R2, R7, o.daddr),
        stx_w(R10, at(R_DST), R2),
    ]);
    a.ja(addrs_done);
    a.bind(v6);
    a.push(&[
        ldx_dw(R2, R7, o.v6_rcv_saddr),
        stx_dw(R10, at(R_SRC), R2),
        ldx_dw(R2, R7, o.v6_rcv_saddr + 8),
        stx_dw(R10, at(R_SRC) + 8, R2),
        ldx_dw(R2, R7, o.v6_daddr),
        stx_dw(R10, at(R_DST), R2),
        ldx_dw(R2, R7, o.v6_daddr + 8),
        stx_dw(R10, at(R_DST) + 8, R2),
    ]);
    a.bind(addrs_done);
    a.push(&[
        mov_reg(R1, R7),
        call(GET_SOCKET_COOKIE),
        stx_dw(R10, at(R_COOKIE), R0),
    ]);
    if f.udp {
        // r7 is the udp_sock; queues as udp_diag_get_info gives them:
        // udp_rqueue_get() and sk_wmem_alloc_get(); no timers.
        owner_fields(&mut a, R7, o.u_ino, o.u_shutdown);
        a.push(&[
            ldx_w(R1, R7, o.u_rmem),
            ldx_w(R2, R7, o.u_deficit),
            sub32_reg(R1, R2),
            stx_w(R10, at(R_RQ), R1),
            ldx_w(R1, R7, o.u_wmem),
            add32_imm(R1, -1),
            stx_w(R10, at(R_WQ), R1),
        ]);
        cgroup_id(&mut a, R7, o.u_cgroup);
    }
    // TCP: full, time-wait and request sockets (dead code for UDP, which
    // the verifier refuses).
    if !f.udp {
        a.jeq_imm(R9, TCP_TIME_WAIT, tw);
        a.jeq_imm(R9, TCP_NEW_SYN_RECV, req);

        // A full socket: r8 = tcp_sock.
        a.push(&[mov_reg(R1, R7), call(SKC_TO_TCP_SOCK), mov_reg(R8, R0)]);
        a.jeq_imm(R8, 0, out);
        owner_fields(&mut a, R8, o.sk_ino, o.sk_shutdown);
        cgroup_id(&mut a, R8, o.sk_cgroup);
        // Queues as tcp_diag_get_info gives them.
        a.jne_imm(R9, TCP_LISTEN, connected);
        a.push(&[
            ldx_w(R1, R8, o.sk_ack_backlog),
            stx_w(R10, at(R_RQ), R1),
            ldx_w(R1, R8, o.sk_max_ack_backlog),
            stx_w(R10, at(R_WQ), R1),
        ]);
        a.ja(timers);
        a.bind(connected);
        a.push(&[
            ldx_w(R1, R8, o.rcv_nxt),
            ldx_w(R2, R8, o.copied_seq),
            sub32_reg(R1, R2),
            mov_reg(R2, R1),
            and_imm(R2, i32::MIN),
        ]);
        a.jeq_imm(R2, 0, rq_ok);
        a.push(&[mov_imm(R1, 0)]); // max_t(int, .., 0)
        a.bind(rq_ok);
        a.push(&[
            stx_w(R10, at(R_RQ), R1),
            ldx_w(R1, R8, o.write_seq),
            ldx_w(R2, R8, o.snd_una),
            sub32_reg(R1, R2),
            stx_w(R10, at(R_WQ), R1),
        ]);
        // Timers as inet_sk_diag_fill gives them.
        a.bind(timers);
        a.push(&[ldx_b(R1, R8, o.icsk_pending)]);
        a.jeq_imm(R1, 1, t_retrans); // ICSK_TIME_RETRANS
        a.jeq_imm(R1, 5, t_retrans); // ICSK_TIME_LOSS_PROBE
        a.jeq_imm(R1, 6, t_retrans); // ICSK_TIME_REO_TIMEOUT
        a.jeq_imm(R1, 3, t_probe); // ICSK_TIME_PROBE0
        a.push(&[ldx_dw(R1, R8, o.sk_timer_pprev)]);
        a.jeq_imm(R1, 0, write); // no keepalive timer pending
        // Each timer: its code as netlink numbers it, the counter shown
        // beside it and where it expires.
        let timer = |a: &mut Asm, code: i32, count: u32, when: u32| {
            a.push(&[
                mov_imm(R1, code),
                stx_b(R10, at(R_TIMER), R1),
                ldx_b(R1, R8, count),
                stx_b(R10, at(R_RETRANS), R1),
                ldx_dw(R1, R8, when),
            ]);
            a.ja(expires);
        };
        timer(&mut a, 2, o.icsk_probes_out, o.sk_timer_expires); // keepalive
        a.bind(t_retrans);
        timer(&mut a, 1, o.icsk_retransmits, o.icsk_rto_expires);
        a.bind(t_probe);
        timer(&mut a, 4, o.icsk_probes_out, o.icsk_rto_expires); // zero window

        // TIME-WAIT: netlink reports the substate, timer 3, nothing else.
        a.bind(tw);
        a.push(&[
            mov_reg(R1, R7),
            call(SKC_TO_TCP_TIMEWAIT_SOCK),
            mov_reg(R8, R0),
        ]);
        a.jeq_imm(R8, 0, out);
        a.push(&[
            ldx_b(R1, R8, o.tw_substate),
            stx_b(R10, at(R_STATE), R1),
            mov_imm(R1, 1),
            stx_b(R10, at(R_KIND), R1),
            mov_imm(R1, 3),
            stx_b(R10, at(R_TIMER), R1),
            ldx_dw(R1, R8, o.tw_expires),
        ]);
        a.ja(expires);

        // A request socket: SYN-RECV, timer 1 with the SYN-ACK retransmits.
        a.bind(req);
        a.push(&[
            mov_reg(R1, R7),
            call(SKC_TO_TCP_REQUEST_SOCK),
            mov_reg(R8, R0),
        ]);
        a.jeq_imm(R8, 0, out);
        a.push(&[
            mov_imm(R1, TCP_SYN_RECV),
            stx_b(R10, at(R_STATE), R1),
            mov_imm(R1, 2),
            stx_b(R10, at(R_KIND), R1),
            mov_imm(R1, 1),
            stx_b(R10, at(R_TIMER), R1),
            ldx_b(R1, R8, o.req_retrans),
            stx_b(R10, at(R_RETRANS), R1),
            ldx_dw(R1, R8, o.req_expires),
        ]);

        // r1 = when the timer fires (jiffies).
        a.bind(expires);
        a.push(&[stx_dw(R10, at(R_EXPIRES), R1)]);
    }
    a.bind(write);
    a.push(&[
        call(JIFFIES64),
        stx_dw(R10, at(R_NOW), R0),
        ldx_dw(R1, R6, CTX_META),
        ldx_dw(R1, R1, o.meta_seq),
        mov_reg(R2, R10),
        add_imm(R2, base as i32),
        mov_imm(R3, REC as i32),
        call(SEQ_WRITE),
    ]);
    a.bind(out);
    a.push(&[mov_imm(R0, 0), exit()]);
    a.finish().expect("the TCP iterator program assembles")
}

fn load_prog(k: &Kernel, f: &Filter) -> Result<OwnedFd, IterError> {
    let o = &k.offsets;
    let attach = if f.udp { k.udp } else { k.tcp };
    let code = encode(&program(o, f));
    let license = b"Dual MIT/GPL\0";
    let mut log = vec![0u8; 256 * 1024];
    let mut attr = [0u8; 128];
    put32(&mut attr, 0, BPF_PROG_TYPE_TRACING);
    put32(&mut attr, 4, (code.len() / 8) as u32);
    put64(&mut attr, 8, code.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 24, 1); // log_level
    put32(&mut attr, 28, log.len() as u32);
    put64(&mut attr, 32, log.as_mut_ptr() as u64);
    attr[48..48 + 13].copy_from_slice(if f.udp {
        b"sockscope_udp"
    } else {
        b"sockscope_tcp"
    });
    put32(&mut attr, 68, BPF_TRACE_ITER); // expected_attach_type
    put32(&mut attr, 108, attach); // attach_btf_id
    let prog = bpf(BPF_PROG_LOAD, &mut attr).map_err(|e| {
        let end = log.iter().position(|&c| c == 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&log[..end]);
        if std::env::var_os("SOCKSCOPE_BPF_LOG").is_some() {
            eprintln!("{text}");
        }
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        IterError::Load(if last.is_empty() {
            e.to_string()
        } else {
            format!("{e}; verifier: {last}")
        })
    })?;
    let mut attr = [0u8; 64];
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, BPF_TRACE_ITER);
    let link =
        bpf(BPF_LINK_CREATE, &mut attr).map_err(|e| IterError::Load(format!("link: {e}")))?;
    drop(prog); // the link holds it
    Ok(link)
}

/// The kernel's side of the programs: offsets and the attach targets.
struct Kernel {
    offsets: Offsets,
    tcp: u32,
    udp: u32,
}

/// Read from BTF once per process, streamed (`btf::lookup`: no copy of
/// the 5.5 MB file).
static KERNEL: OnceLock<Result<Kernel, IterError>> = OnceLock::new();

fn kernel() -> Result<&'static Kernel, IterError> {
    KERNEL
        .get_or_init(|| {
            let e = |e: BtfError| IterError::Btf(e.to_string());
            let found = btf::lookup_vmlinux(&WANT).map_err(e)?;
            Ok(Kernel {
                offsets: offsets(&found).map_err(e)?,
                tcp: found.func_id("bpf_iter_tcp").map_err(e)?,
                udp: found.func_id("bpf_iter_udp").map_err(e)?,
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}
/// Programs loaded so far, one per filter (a run of the CLI needs one).
static LINKS: Mutex<Vec<(Filter, std::sync::Arc<OwnedFd>)>> = Mutex::new(Vec::new());
/// The first load error: later requests fail the same way at once.
static FAILED: OnceLock<IterError> = OnceLock::new();

fn link_for(f: &Filter) -> Result<std::sync::Arc<OwnedFd>, IterError> {
    if let Some(e) = FAILED.get() {
        return Err(e.clone());
    }
    let mut links = LINKS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, l)) = links.iter().find(|(g, _)| g == f) {
        return Ok(l.clone());
    }
    let r = kernel().and_then(|k| load_prog(k, f));
    match r {
        Ok(l) => {
            let l = std::sync::Arc::new(l);
            links.push((*f, l.clone()));
            Ok(l)
        }
        Err(e) => {
            let _ = FAILED.set(e.clone());
            Err(e)
        }
    }
}

/// Whether the iterator can be loaded here, loading it for `f` if so.
pub fn prepare(f: &Filter) -> Result<(), IterError> {
    link_for(f).map(|_| ())
}

/// Walk the TCP table of the calling thread's network namespace, handing
/// each socket `f` keeps to `each` in the kernel's order (listeners, then
/// the established table; the families interleaved). Stops early (Ok) when
/// `each` returns false. Nothing is handed over before the program is
/// loaded, so an error with no socket handed over leaves the caller free
/// to read another source.
pub fn dump(f: &Filter, each: &mut dyn FnMut(Socket) -> bool) -> Result<(), IterError> {
    let proto = if f.udp { Proto::Udp } else { Proto::Tcp };
    let link = link_for(f)?;
    let mut attr = [0u8; 8];
    put32(&mut attr, 0, link.as_raw_fd() as u32);
    let mono = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let iter =
        bpf(BPF_ITER_CREATE, &mut attr).map_err(|e| IterError::Read(format!("iter: {e}")))?;
    let mut file = std::fs::File::from(iter);
    let mut hz = None;
    // Reads of up to 256 KiB (the kernel fills as much as fits, a page
    // at a time), decoded in place.
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0;
    loop {
        let n = match file.read(&mut buf[have..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IterError::Read(e.to_string())),
        };
        if n == 0 {
            break;
        }
        have += n;
        let whole = have - have % REC;
        for r in buf[..whole].chunks_exact(REC) {
            let hz = *hz.get_or_insert_with(|| {
                kernel_hz(
                    u64_at(r, R_NOW),
                    mono.tv_sec as u64 * 1_000_000_000 + mono.tv_nsec as u64,
                )
            });
            if let Some(s) = decode(r, hz, proto)
                && !each(s)
            {
                return Ok(());
            }
        }
        buf.copy_within(whole..have, 0);
        have -= whole;
    }
    Ok(())
}

/// The kernel's tick rate, from one reading of jiffies and of the
/// monotonic clock: jiffies start at `(u32)(-300 * HZ)` at boot and the
/// monotonic clock at 0, so `jiffies ≈ initial + seconds * HZ` for the
/// true HZ only (remembered once known).
fn kernel_hz(jiffies: u64, mono_ns: u64) -> u32 {
    static HZ: OnceLock<u32> = OnceLock::new();
    *HZ.get_or_init(|| {
        let secs = mono_ns as f64 / 1e9;
        [
            100u32, 250, 300, 1000, 24, 48, 64, 128, 200, 256, 500, 512, 1024, 1200,
        ]
        .into_iter()
        .min_by_key(|&hz| {
            let initial = u64::from((-300i64 * i64::from(hz)) as u32);
            let want = initial.wrapping_add((secs * f64::from(hz)) as u64);
            jiffies.wrapping_sub(want).min(want.wrapping_sub(jiffies))
        })
        .unwrap_or(250)
    })
}

/// `jiffies_to_msecs` for a tick rate of `hz`.
fn jiffies_to_ms(j: u64, hz: u32) -> u64 {
    let hz = u64::from(hz);
    if 1000 % hz == 0 {
        j * (1000 / hz)
    } else {
        (j * 1000).div_ceil(hz)
    }
}

fn u64_at(r: &[u8], at: i16) -> u64 {
    let at = at as usize;
    u64::from_ne_bytes(r[at..at + 8].try_into().expect("8 bytes"))
}
fn u32_at(r: &[u8], at: i16) -> u32 {
    let at = at as usize;
    u32::from_ne_bytes(r[at..at + 4].try_into().expect("4 bytes"))
}
fn u16_at(r: &[u8], at: i16) -> u16 {
    let at = at as usize;
    u16::from_ne_bytes([r[at], r[at + 1]])
}

/// One record (REC bytes) as a socket, with the fields netlink's dump
/// without extensions gives; None for a family or state we do not know.
pub fn decode(r: &[u8], hz: u32, proto: Proto) -> Option<Socket> {
    let fam = i32::from(u16_at(r, R_FAMILY));
    let family = match fam {
        AF_INET => Family::Inet,
        AF_INET6 => Family::Inet6,
        _ => return None,
    };
    let state = State::from_kernel(r[R_STATE as usize])?;
    let addr = |at: i16| -> IpAddr {
        let at = at as usize;
        if family == Family::Inet6 {
            let b: [u8; 16] = r[at..at + 16].try_into().expect("16 bytes");
            IpAddr::V6(Ipv6Addr::from(b))
        } else {
            IpAddr::V4(Ipv4Addr::new(r[at], r[at + 1], r[at + 2], r[at + 3]))
        }
    };
    let kind = r[R_KIND as usize];
    let full = kind == 0;
    let timer_kind = r[R_TIMER as usize];
    let expires_ms = if timer_kind == 0 {
        0
    } else {
        let delta = u64_at(r, R_EXPIRES).wrapping_sub(u64_at(r, R_NOW)) as i64;
        // jiffies_delta_to_msecs, truncated to idiag_expires' u32.
        i64::from(jiffies_to_ms(delta.max(0) as u64, hz) as u32)
    };
    let ifindex = u32_at(r, R_IF);
    let mut s = Socket::new(
        proto,
        family,
        state,
        Endpoint::Inet {
            addr: addr(R_SRC),
            port: u16_at(r, R_SPORT),
        },
        Endpoint::Inet {
            addr: addr(R_DST),
            port: u16::from_be(u16_at(r, R_DPORT)),
        },
        SourceKind::Bpf,
    );
    s.recv_q = Some(u32_at(r, R_RQ));
    s.send_q = Some(u32_at(r, R_WQ));
    s.inode = u64::from(u64_at(r, R_INODE) as u32);
    s.uid = Some(u32_at(r, R_UID));
    s.cookie = Some(u64_at(r, R_COOKIE));
    s.bound_ifindex = (ifindex != 0).then_some(ifindex);
    s.timer = Some(Timer {
        kind: TimerKind::from_kernel(timer_kind),
        expires_ms,
        retrans: u32::from(r[R_RETRANS as usize]),
    });
    if full {
        s.shutdown = Some(r[R_SHUTDOWN as usize]);
        s.cgroup_id = Some(u64_at(r, R_CGROUP));
        if family == Family::Inet6 && matches!(state, State::Listen | State::Close) {
            s.v6only = Some(r[R_V6ONLY as usize] != 0);
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fill: impl FnOnce(&mut [u8])) -> Vec<u8> {
        let mut r = vec![0u8; REC];
        fill(&mut r);
        r
    }

    #[test]
    fn decodes_a_listener_and_a_time_wait_socket() {
        let put = |r: &mut [u8], at: i16, b: &[u8]| {
            r[at as usize..at as usize + b.len()].copy_from_slice(b)
        };
        let l = record(|r| {
            put(r, R_FAMILY, &10u16.to_ne_bytes());
            r[R_STATE as usize] = 10;
            put(r, R_SPORT, &8080u16.to_ne_bytes());
            put(r, R_SRC, &Ipv6Addr::LOCALHOST.octets());
            put(r, R_RQ, &3u32.to_ne_bytes());
            put(r, R_WQ, &128u32.to_ne_bytes());
            put(r, R_INODE, &4242u64.to_ne_bytes());
            put(r, R_UID, &1000u32.to_ne_bytes());
            put(r, R_COOKIE, &77u64.to_ne_bytes());
            put(r, R_CGROUP, &9u64.to_ne_bytes());
            r[R_V6ONLY as usize] = 1;
            r[R_SHUTDOWN as usize] = 0;
        });
        let s = decode(&l, 250, Proto::Tcp).unwrap();
        assert_eq!((s.family, s.state), (Family::Inet6, State::Listen));
        assert_eq!(
            s.local,
            Endpoint::Inet {
                addr: IpAddr::V6(Ipv6Addr::LOCALHOST),
                port: 8080
            }
        );
        assert_eq!((s.recv_q, s.send_q), (Some(3), Some(128)));
        assert_eq!((s.inode, s.uid, s.cookie), (4242, Some(1000), Some(77)));
        assert_eq!(
            (s.v6only, s.shutdown, s.cgroup_id),
            (Some(true), Some(0), Some(9))
        );
        assert_eq!(s.timer.unwrap().kind, TimerKind::Off);
        assert_eq!(s.source, SourceKind::Bpf);

        let tw = record(|r| {
            put(r, R_FAMILY, &2u16.to_ne_bytes());
            r[R_STATE as usize] = 6;
            r[R_KIND as usize] = 1;
            r[R_TIMER as usize] = 3;
            put(r, R_SRC, &[127, 0, 0, 1]);
            put(r, R_DST, &[10, 0, 0, 2]);
            put(r, R_DPORT, &443u16.to_be_bytes());
            put(r, R_NOW, &1000u64.to_ne_bytes());
            put(r, R_EXPIRES, &1015u64.to_ne_bytes());
        });
        let s = decode(&tw, 250, Proto::Tcp).unwrap();
        assert_eq!(s.state, State::TimeWait);
        assert_eq!(
            s.peer,
            Endpoint::Inet {
                addr: "10.0.0.2".parse().unwrap(),
                port: 443
            }
        );
        assert_eq!(s.timer.as_ref().unwrap().expires_ms, 60);
        assert_eq!(s.timer.unwrap().kind, TimerKind::Timewait);
        // No attributes for time-wait sockets, as netlink sends none.
        assert_eq!((s.shutdown, s.cgroup_id, s.v6only), (None, None, None));
        // An overdue timer reads 0, as jiffies_delta_to_msecs gives it.
        let late = record(|r| {
            r.copy_from_slice(&tw);
            put(r, R_EXPIRES, &990u64.to_ne_bytes());
        });
        assert_eq!(
            decode(&late, 250, Proto::Tcp)
                .unwrap()
                .timer
                .unwrap()
                .expires_ms,
            0
        );
        // Unknown family: no row.
        let odd = record(|r| put(r, R_FAMILY, &1u16.to_ne_bytes()));
        assert!(decode(&odd, 250, Proto::Tcp).is_none());
    }

    #[test]
    fn tick_rate_from_one_reading() {
        for hz in [100u32, 250, 300, 1000] {
            let secs = 3600u64 * 7 + 13;
            let j = u64::from((-300i64 * i64::from(hz)) as u32) + secs * u64::from(hz) + 3;
            // Each call outside the cache: check the candidate search itself.
            let secs_f = secs as f64;
            let got = [100u32, 250, 300, 1000]
                .into_iter()
                .min_by_key(|&h| {
                    let initial = u64::from((-300i64 * i64::from(h)) as u32);
                    let want = initial.wrapping_add((secs_f * f64::from(h)) as u64);
                    j.wrapping_sub(want).min(want.wrapping_sub(j))
                })
                .unwrap();
            assert_eq!(got, hz);
        }
        assert_eq!(jiffies_to_ms(15, 250), 60);
        assert_eq!(jiffies_to_ms(1, 300), 4);
        assert_eq!(jiffies_to_ms(7, 1000), 7);
    }

    #[test]
    fn filter_keeps_request_sockets_with_syn_recv() {
        let f = Filter::new(StateSet::of(&[State::SynRecv]), true, true, None);
        assert_ne!(f.states & (1 << TCP_NEW_SYN_RECV), 0);
        let f = Filter::new(StateSet::of(&[State::Listen]), true, false, Some(80));
        assert_eq!(f.states, 1 << TCP_LISTEN);
    }

    #[test]
    fn every_jump_is_resolved() {
        let o = Offsets::default();
        for f in [
            Filter::new(StateSet::ALL, true, true, None),
            Filter::new(StateSet::ALL, true, false, Some(22)),
            Filter::new(StateSet::ALL, true, true, None).udp(),
        ] {
            let p = program(&o, &f);
            assert_eq!(p.last(), Some(&exit()));
            for (i, insn) in p.iter().enumerate() {
                if matches!(insn.0, 0x05 | 0x15 | 0x55) {
                    let target = i as i64 + 1 + i64::from(insn.2);
                    assert!(target > i as i64 && target < p.len() as i64, "jump at {i}");
                }
            }
        }
    }
}
