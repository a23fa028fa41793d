//! Decoding `struct tcp_info` and skmeminfo from the bytes inet_diag sends.
//!
//! tcp_info has a different length on every kernel: what arrives is copied
//! into a zeroed buffer as long as the largest layout we know, and fields
//! past the length the kernel sent are `None`, never a fake 0.

use crate::abi::{skmeminfo, tcp_info as off};
use crate::model::{SkMem, TcpInfo};

/// Largest tcp_info layout decoded here.
const KNOWN_LEN: usize = 248;

struct Buf {
    b: [u8; KNOWN_LEN],
    len: usize,
}

impl Buf {
    fn u8(&self, at: usize) -> u8 {
        self.b[at]
    }
    fn u16(&self, at: usize) -> Option<u16> {
        (at + 2 <= self.len).then(|| u16::from_ne_bytes([self.b[at], self.b[at + 1]]))
    }
    fn u32(&self, at: usize) -> Option<u32> {
        (at + 4 <= self.len).then(|| crate::abi::u32_ne(&self.b, at))
    }
    fn u64(&self, at: usize) -> Option<u64> {
        (at + 8 <= self.len).then(|| crate::abi::u64_ne(&self.b, at))
    }
    fn base(&self, at: usize) -> u32 {
        crate::abi::u32_ne(&self.b, at)
    }
}

fn ca_state(n: u8) -> &'static str {
    // enum tcp_ca_state (include/uapi/linux/tcp.h)
    match n {
        0 => "open",
        1 => "disorder",
        2 => "cwr",
        3 => "recovery",
        4 => "loss",
        _ => "unknown",
    }
}

/// Decode tcp_info; `None` if shorter than the fixed part every kernel
/// sends.
pub fn decode_tcp_info(raw: &[u8]) -> Option<TcpInfo> {
    if raw.len() < off::BASE_LEN {
        return None;
    }
    let mut b = Buf {
        b: [0; KNOWN_LEN],
        len: raw.len().min(KNOWN_LEN),
    };
    b.b[..b.len].copy_from_slice(&raw[..b.len]);
    let opts = b.u8(off::OPTIONS);
    let mut options = Vec::new();
    for (bit, name) in [
        (off::OPT_TIMESTAMPS, "timestamps"),
        (off::OPT_SACK, "sack"),
        (off::OPT_WSCALE, "wscale"),
        (off::OPT_ECN, "ecn"),
        (off::OPT_ECN_SEEN, "ecn_seen"),
        (off::OPT_SYN_DATA, "syn_data"),
        (off::OPT_USEC_TS, "usec_ts"),
    ] {
        if opts & bit != 0 {
            options.push(name.into());
        }
    }
    let ws = b.u8(off::WSCALE);
    Some(TcpInfo {
        len: raw.len(),
        ca_state: ca_state(b.u8(off::CA_STATE)).into(),
        retransmits: b.u8(off::RETRANSMITS),
        probes: b.u8(off::PROBES),
        backoff: b.u8(off::BACKOFF),
        options,
        snd_wscale: ws & 0x0f,
        rcv_wscale: ws >> 4,
        rto_us: b.base(off::RTO),
        ato_us: b.base(off::ATO),
        snd_mss: b.base(off::SND_MSS),
        rcv_mss: b.base(off::RCV_MSS),
        unacked: b.base(off::UNACKED),
        sacked: b.base(off::SACKED),
        lost: b.base(off::LOST),
        retrans: b.base(off::RETRANS),
        last_data_sent_ms: b.base(off::LAST_DATA_SENT),
        last_data_recv_ms: b.base(off::LAST_DATA_RECV),
        last_ack_recv_ms: b.base(off::LAST_ACK_RECV),
        pmtu: b.base(off::PMTU),
        rcv_ssthresh: b.base(off::RCV_SSTHRESH),
        rtt_us: b.base(off::RTT),
        rttvar_us: b.base(off::RTTVAR),
        snd_ssthresh: b.base(off::SND_SSTHRESH),
        snd_cwnd: b.base(off::SND_CWND),
        advmss: b.base(off::ADVMSS),
        reordering: b.base(off::REORDERING),
        rcv_rtt_us: b.base(off::RCV_RTT),
        rcv_space: b.base(off::RCV_SPACE),
        total_retrans: b.base(off::TOTAL_RETRANS),
        pacing_rate_bytes_per_s: b.u64(off::PACING_RATE),
        max_pacing_rate_bytes_per_s: b.u64(off::MAX_PACING_RATE),
        bytes_acked: b.u64(off::BYTES_ACKED),
        bytes_received: b.u64(off::BYTES_RECEIVED),
        segs_out: b.u32(off::SEGS_OUT),
        segs_in: b.u32(off::SEGS_IN),
        notsent_bytes: b.u32(off::NOTSENT_BYTES),
        min_rtt_us: b.u32(off::MIN_RTT),
        data_segs_in: b.u32(off::DATA_SEGS_IN),
        data_segs_out: b.u32(off::DATA_SEGS_OUT),
        delivery_rate_bytes_per_s: b.u64(off::DELIVERY_RATE),
        delivery_rate_app_limited: (b.len >= off::DELIVERY_RATE + 8)
            .then(|| b.u8(off::APP_LIMITED) & 1 != 0),
        busy_time_us: b.u64(off::BUSY_TIME),
        rwnd_limited_us: b.u64(off::RWND_LIMITED),
        sndbuf_limited_us: b.u64(off::SNDBUF_LIMITED),
        delivered: b.u32(off::DELIVERED),
        delivered_ce: b.u32(off::DELIVERED_CE),
        bytes_sent: b.u64(off::BYTES_SENT),
        bytes_retrans: b.u64(off::BYTES_RETRANS),
        dsack_dups: b.u32(off::DSACK_DUPS),
        reord_seen: b.u32(off::REORD_SEEN),
        rcv_ooopack: b.u32(off::RCV_OOOPACK),
        snd_wnd_bytes: b.u32(off::SND_WND),
        rcv_wnd_bytes: b.u32(off::RCV_WND),
        rehash: b.u32(off::REHASH),
        total_rto: b.u16(off::TOTAL_RTO),
        total_rto_recoveries: b.u16(off::TOTAL_RTO_RECOVERIES),
        total_rto_time_ms: b.u32(off::TOTAL_RTO_TIME),
    })
}

/// Decode skmeminfo (an array of u32); `None` if shorter than the nine
/// fields every kernel since 3.x sends.
pub fn decode_skmem(raw: &[u8]) -> Option<SkMem> {
    if raw.len() < skmeminfo::COUNT * 4 {
        return None;
    }
    let g = |i: usize| crate::abi::u32_ne(raw, i * 4);
    Some(SkMem {
        rmem_alloc_bytes: g(skmeminfo::RMEM_ALLOC),
        rcvbuf_bytes: g(skmeminfo::RCVBUF),
        wmem_alloc_bytes: g(skmeminfo::WMEM_ALLOC),
        sndbuf_bytes: g(skmeminfo::SNDBUF),
        fwd_alloc_bytes: g(skmeminfo::FWD_ALLOC),
        wmem_queued_bytes: g(skmeminfo::WMEM_QUEUED),
        optmem_bytes: g(skmeminfo::OPTMEM),
        backlog_bytes: g(skmeminfo::BACKLOG),
        drops: g(skmeminfo::DROPS),
    })
}

/// The congestion control name attribute: a NUL-terminated string.
pub fn decode_cong(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    (end > 0).then(|| String::from_utf8_lossy(&raw[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    #[test]
    fn old_kernel_length_leaves_new_fields_unknown() {
        let mut raw = vec![0u8; off::BASE_LEN];
        raw[off::CA_STATE] = 4;
        raw[off::OPTIONS] = off::OPT_SACK | off::OPT_TIMESTAMPS;
        raw[off::WSCALE] = 0x97; // rcv 9, snd 7
        put32(&mut raw, off::RTT, 1500);
        put32(&mut raw, off::SND_CWND, 10);
        let t = decode_tcp_info(&raw).unwrap();
        assert_eq!(t.ca_state, "loss");
        assert_eq!(t.options, vec!["timestamps", "sack"]);
        assert_eq!((t.snd_wscale, t.rcv_wscale), (7, 9));
        assert_eq!(t.rtt_us, 1500);
        assert_eq!(t.snd_cwnd, 10);
        assert_eq!(t.bytes_acked, None);
        assert_eq!(t.min_rtt_us, None);
        assert_eq!(t.delivery_rate_app_limited, None);
    }

    #[test]
    fn longer_than_known_is_fine_and_short_is_none() {
        let mut raw = vec![0u8; 400];
        raw[off::BYTES_ACKED..off::BYTES_ACKED + 8].copy_from_slice(&77u64.to_ne_bytes());
        put32(&mut raw, off::TOTAL_RTO_TIME, 5);
        let t = decode_tcp_info(&raw).unwrap();
        assert_eq!(t.bytes_acked, Some(77));
        assert_eq!(t.total_rto_time_ms, Some(5));
        assert_eq!(t.len, 400);
        assert!(decode_tcp_info(&raw[..50]).is_none());
        // A length cutting a u64 in half leaves that field unknown.
        let t = decode_tcp_info(&raw[..124]).unwrap();
        assert_eq!(t.max_pacing_rate_bytes_per_s, Some(0));
        assert_eq!(t.bytes_acked, None);
    }

    #[test]
    fn skmem_and_cong() {
        let raw: Vec<u8> = (1..=9u32).flat_map(|v| v.to_ne_bytes()).collect();
        let m = decode_skmem(&raw).unwrap();
        assert_eq!(m.rmem_alloc_bytes, 1);
        assert_eq!(m.drops, 9);
        assert!(decode_skmem(&raw[..20]).is_none());
        assert_eq!(decode_cong(b"cubic\0").as_deref(), Some("cubic"));
        assert_eq!(decode_cong(b"\0"), None);
    }
}
