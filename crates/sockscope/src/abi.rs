//! Kernel ABI: the constants and struct layouts sockscope reads, each with the
//! uapi header it comes from. Structs are decoded from bytes by offset (no
//! `unsafe` transmutes), so a shorter or longer struct from another kernel is
//! handled by the length checks in the readers.

/// include/uapi/linux/netlink.h
pub mod netlink {
    pub const NLMSG_HDRLEN: usize = 16;
    pub const NLMSG_ERROR: u16 = 2;
    pub const NLMSG_DONE: u16 = 3;
    pub const NLM_F_REQUEST: u16 = 0x1;
    pub const NLM_F_DUMP: u16 = 0x300; // NLM_F_ROOT | NLM_F_MATCH
    pub const NLA_HDRLEN: usize = 4;
    pub const NLA_TYPE_MASK: u16 = 0x3fff;

    /// NLMSG_ALIGN / NLA_ALIGN: 4-byte alignment.
    pub const fn align(n: usize) -> usize {
        (n + 3) & !3
    }
}

/// include/uapi/linux/sock_diag.h
pub mod sock_diag {
    pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
    /// The older inet_diag request type (include/uapi/linux/inet_diag.h):
    /// its dump is for both address families at once (the kernel sets
    /// `sdiag_family = AF_UNSPEC`, net/ipv4/inet_diag.c
    /// inet_diag_dump_compat), so one walk of the TCP hash tables serves
    /// IPv4 and IPv6, where SOCK_DIAG_BY_FAMILY walks them once per family.
    pub const TCPDIAG_GETSOCK: u16 = 18;
    /// sizeof(struct inet_diag_req): u8 family, src_len, dst_len, ext;
    /// struct inet_diag_sockid (48); u32 states; u32 dbs.
    pub const COMPAT_REQ_LEN: usize = 60;
}

/// include/uapi/linux/inet_diag.h
pub mod inet_diag {
    /// sizeof(struct inet_diag_req_v2):
    /// u8 family, u8 protocol, u8 ext, u8 pad (raw protocol), u32 states,
    /// struct inet_diag_sockid (48 bytes).
    pub const REQ_V2_LEN: usize = 56;
    /// sizeof(struct inet_diag_msg): u8 family, state, timer, retrans;
    /// sockid (48); u32 expires, rqueue, wqueue, uid, inode.
    pub const MSG_LEN: usize = 72;
    /// Offsets inside struct inet_diag_msg.
    pub const MSG_FAMILY: usize = 0;
    pub const MSG_STATE: usize = 1;
    pub const MSG_TIMER: usize = 2;
    pub const MSG_RETRANS: usize = 3;
    /// struct inet_diag_sockid starts here: be16 sport, be16 dport,
    /// be32 src[4], be32 dst[4], u32 if, u32 cookie[2].
    pub const MSG_ID: usize = 4;
    pub const ID_SPORT: usize = 0;
    pub const ID_DPORT: usize = 2;
    pub const ID_SRC: usize = 4;
    pub const ID_DST: usize = 20;
    pub const ID_IF: usize = 36;
    pub const ID_COOKIE: usize = 40;
    pub const MSG_EXPIRES: usize = 52;
    pub const MSG_RQUEUE: usize = 56;
    pub const MSG_WQUEUE: usize = 60;
    pub const MSG_UID: usize = 64;
    pub const MSG_INODE: usize = 68;
    /// INET_DIAG_NOCOOKIE: both cookie words all ones.
    pub const NOCOOKIE: u32 = !0;

    // enum { INET_DIAG_NONE, INET_DIAG_MEMINFO, ... }
    pub const INET_DIAG_MEMINFO: u16 = 1;
    pub const INET_DIAG_INFO: u16 = 2;
    pub const INET_DIAG_VEGASINFO: u16 = 3;
    pub const INET_DIAG_CONG: u16 = 4;
    pub const INET_DIAG_TOS: u16 = 5;
    pub const INET_DIAG_TCLASS: u16 = 6;
    pub const INET_DIAG_SKMEMINFO: u16 = 7;
    pub const INET_DIAG_SHUTDOWN: u16 = 8;
    pub const INET_DIAG_SKV6ONLY: u16 = 11;
    pub const INET_DIAG_MARK: u16 = 15;
    pub const INET_DIAG_CGROUP_ID: u16 = 21;
    pub const INET_DIAG_SOCKOPT: u16 = 22;

    /// Request attribute carrying a filter program (enum
    /// inet_diag_req_attrs: INET_DIAG_REQ_NONE, INET_DIAG_REQ_BYTECODE).
    pub const INET_DIAG_REQ_BYTECODE: u16 = 1;
    /// Filter opcodes (enum in inet_diag.h): unconditional jump (it
    /// follows `no`); local (S) and remote (D) port at least, at most,
    /// equal; address and port conditions (struct inet_diag_hostcond).
    pub const INET_DIAG_BC_JMP: u8 = 1;
    pub const INET_DIAG_BC_S_GE: u8 = 2;
    pub const INET_DIAG_BC_S_LE: u8 = 3;
    pub const INET_DIAG_BC_D_GE: u8 = 4;
    pub const INET_DIAG_BC_D_LE: u8 = 5;
    pub const INET_DIAG_BC_S_COND: u8 = 7;
    pub const INET_DIAG_BC_D_COND: u8 = 8;
    pub const INET_DIAG_BC_S_EQ: u8 = 11;
    pub const INET_DIAG_BC_D_EQ: u8 = 12;
    /// struct inet_diag_bc_op: u8 code, u8 yes, u16 no.
    pub const BC_OP_LEN: usize = 4;

    /// struct inet_diag_bc_op.
    pub fn bc_op(code: u8, yes: usize, no: usize) -> [u8; 4] {
        let no = (no as u16).to_ne_bytes();
        [code, yes as u8, no[0], no[1]]
    }

    /// In a filter program block of `code.len()` bytes that fails by
    /// jumping four bytes past its end (the kernel rejects a socket whose
    /// run ends past the program), make those jumps go `extra` bytes
    /// further: past a block appended after it. Every op's `yes` must be
    /// its length, as in every program sockscope builds.
    pub fn relocate_failures(code: &mut [u8], extra: usize) {
        let len = code.len();
        let mut at = 0;
        while at + BC_OP_LEN <= len {
            let yes = usize::from(code[at + 1]);
            let no = usize::from(u16::from_ne_bytes([code[at + 2], code[at + 3]]));
            if at + no == len + BC_OP_LEN {
                let moved = ((no + extra) as u16).to_ne_bytes();
                code[at + 2..at + 4].copy_from_slice(&moved);
            }
            at += yes.max(BC_OP_LEN);
        }
    }

    /// Bit to set in `idiag_ext` to ask for extension `ext` (1..=8).
    pub const fn ext_bit(ext: u16) -> u8 {
        1 << (ext - 1)
    }
}

/// include/uapi/linux/unix_diag.h
pub mod unix_diag {
    /// sizeof(struct unix_diag_req): u8 family, u8 protocol, u16 pad,
    /// u32 states, u32 ino, u32 show, u32 cookie[2].
    pub const REQ_LEN: usize = 24;
    /// sizeof(struct unix_diag_msg): u8 family, type, state, pad; u32 ino;
    /// u32 cookie[2].
    pub const MSG_LEN: usize = 16;
    pub const MSG_TYPE: usize = 1;
    pub const MSG_STATE: usize = 2;
    pub const MSG_INO: usize = 4;
    pub const MSG_COOKIE: usize = 8;

    pub const UDIAG_SHOW_NAME: u32 = 0x01;
    pub const UDIAG_SHOW_VFS: u32 = 0x02;
    pub const UDIAG_SHOW_PEER: u32 = 0x04;
    pub const UDIAG_SHOW_ICONS: u32 = 0x08;
    pub const UDIAG_SHOW_RQLEN: u32 = 0x10;
    pub const UDIAG_SHOW_MEMINFO: u32 = 0x20;
    pub const UDIAG_SHOW_UID: u32 = 0x40;

    pub const UNIX_DIAG_NAME: u16 = 0;
    pub const UNIX_DIAG_VFS: u16 = 1;
    pub const UNIX_DIAG_PEER: u16 = 2;
    pub const UNIX_DIAG_ICONS: u16 = 3;
    pub const UNIX_DIAG_RQLEN: u16 = 4;
    pub const UNIX_DIAG_MEMINFO: u16 = 5;
    pub const UNIX_DIAG_SHUTDOWN: u16 = 6;
    pub const UNIX_DIAG_UID: u16 = 7;
}

/// include/linux/socket.h, include/uapi/linux/in.h, linux/net.h
pub mod consts {
    pub const AF_UNIX: u8 = 1;
    pub const AF_INET: u8 = 2;
    pub const AF_INET6: u8 = 10;
    pub const IPPROTO_TCP: u8 = 6;
    pub const IPPROTO_UDP: u8 = 17;
    pub const IPPROTO_UDPLITE: u8 = 136;
    pub const IPPROTO_RAW: u8 = 255;
    /// enum sock_type (include/linux/net.h)
    pub const SOCK_STREAM: u8 = 1;
    pub const SOCK_DGRAM: u8 = 2;
    pub const SOCK_SEQPACKET: u8 = 5;
}

/// Read helpers over byte slices; every caller checks lengths first.
pub(crate) fn u16_ne(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}
pub(crate) fn u16_be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn u32_ne(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn u64_ne(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

/// include/uapi/linux/tcp.h: byte offsets of `struct tcp_info` fields. The
/// struct only ever grows; a field lies past the end on older kernels.
pub mod tcp_info {
    pub const STATE: usize = 0;
    pub const CA_STATE: usize = 1;
    pub const RETRANSMITS: usize = 2;
    pub const PROBES: usize = 3;
    pub const BACKOFF: usize = 4;
    pub const OPTIONS: usize = 5;
    /// snd_wscale in the low 4 bits, rcv_wscale in the high 4.
    pub const WSCALE: usize = 6;
    /// bit 0: delivery_rate_app_limited; bits 1-2: fastopen_client_fail.
    pub const APP_LIMITED: usize = 7;
    pub const RTO: usize = 8;
    pub const ATO: usize = 12;
    pub const SND_MSS: usize = 16;
    pub const RCV_MSS: usize = 20;
    pub const UNACKED: usize = 24;
    pub const SACKED: usize = 28;
    pub const LOST: usize = 32;
    pub const RETRANS: usize = 36;
    pub const LAST_DATA_SENT: usize = 44;
    pub const LAST_DATA_RECV: usize = 52;
    pub const LAST_ACK_RECV: usize = 56;
    pub const PMTU: usize = 60;
    pub const RCV_SSTHRESH: usize = 64;
    pub const RTT: usize = 68;
    pub const RTTVAR: usize = 72;
    pub const SND_SSTHRESH: usize = 76;
    pub const SND_CWND: usize = 80;
    pub const ADVMSS: usize = 84;
    pub const REORDERING: usize = 88;
    pub const RCV_RTT: usize = 92;
    pub const RCV_SPACE: usize = 96;
    pub const TOTAL_RETRANS: usize = 100;
    /// The fixed part every kernel since 2.6 sends.
    pub const BASE_LEN: usize = 104;
    pub const PACING_RATE: usize = 104;
    pub const MAX_PACING_RATE: usize = 112;
    pub const BYTES_ACKED: usize = 120;
    pub const BYTES_RECEIVED: usize = 128;
    pub const SEGS_OUT: usize = 136;
    pub const SEGS_IN: usize = 140;
    pub const NOTSENT_BYTES: usize = 144;
    pub const MIN_RTT: usize = 148;
    pub const DATA_SEGS_IN: usize = 152;
    pub const DATA_SEGS_OUT: usize = 156;
    pub const DELIVERY_RATE: usize = 160;
    pub const BUSY_TIME: usize = 168;
    pub const RWND_LIMITED: usize = 176;
    pub const SNDBUF_LIMITED: usize = 184;
    pub const DELIVERED: usize = 192;
    pub const DELIVERED_CE: usize = 196;
    pub const BYTES_SENT: usize = 200;
    pub const BYTES_RETRANS: usize = 208;
    pub const DSACK_DUPS: usize = 216;
    pub const REORD_SEEN: usize = 220;
    pub const RCV_OOOPACK: usize = 224;
    pub const SND_WND: usize = 228;
    pub const RCV_WND: usize = 232;
    pub const REHASH: usize = 236;
    pub const TOTAL_RTO: usize = 240;
    pub const TOTAL_RTO_RECOVERIES: usize = 242;
    pub const TOTAL_RTO_TIME: usize = 244;

    // tcpi_options bits
    pub const OPT_TIMESTAMPS: u8 = 1;
    pub const OPT_SACK: u8 = 2;
    pub const OPT_WSCALE: u8 = 4;
    pub const OPT_ECN: u8 = 8;
    pub const OPT_ECN_SEEN: u8 = 16;
    pub const OPT_SYN_DATA: u8 = 32;
    pub const OPT_USEC_TS: u8 = 64;
}

/// include/uapi/linux/sock_diag.h: SK_MEMINFO_* indexes (u32 each) of
/// INET_DIAG_SKMEMINFO.
pub mod skmeminfo {
    pub const RMEM_ALLOC: usize = 0;
    pub const RCVBUF: usize = 1;
    pub const WMEM_ALLOC: usize = 2;
    pub const SNDBUF: usize = 3;
    pub const FWD_ALLOC: usize = 4;
    pub const WMEM_QUEUED: usize = 5;
    pub const OPTMEM: usize = 6;
    pub const BACKLOG: usize = 7;
    pub const DROPS: usize = 8;
    pub const COUNT: usize = 9;
}
