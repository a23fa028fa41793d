//! Counters kept in kernel maps for `sockscope export --bpf`: TCP
//! retransmits and resets sent and received, per network namespace and
//! local port, and TCP packets dropped, per namespace, local port and the
//! kernel's drop reason, and per listener port two histograms (log2
//! buckets of microseconds): handshake latency and connection duration
//! (bpf/counters.bpf.c). The programs only increment a hash map;
//! nothing goes through a ring buffer, and user space reads the map when it
//! is asked to ([`PortCounters::read`], at scrape time). The programs stay
//! attached while the [`PortCounters`] lives: dropping it detaches them.

use crate::loader::{Skipped, TraceError, chain, denied, preflight, take_map};
use crate::names::Reasons;
use aya::maps::{Array, HashMap as BpfHash, MapData};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

#[cfg(target_arch = "x86_64")]
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/counters-x86_64.bpf.o");
#[cfg(target_arch = "aarch64")]
static OBJECT: &[u8] = aya::include_bytes_aligned!("../bpf/counters-aarch64.bpf.o");
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
static OBJECT: &[u8] = &[];

/// What a counter counts (the numbering of bpf/counters.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PortKind {
    /// tcp:tcp_retransmit_skb: a segment sent again.
    Retransmit = 0,
    /// tcp:tcp_send_reset: a RST sent (by a socket, or for a segment that
    /// arrived at a closed port).
    ResetSent = 1,
    /// tcp:tcp_receive_reset: a RST that reset one of our sockets.
    ResetReceived = 2,
}

impl PortKind {
    pub const ALL: [PortKind; 3] = [
        PortKind::Retransmit,
        PortKind::ResetSent,
        PortKind::ResetReceived,
    ];
    fn from_u8(k: u8) -> Option<PortKind> {
        PortKind::ALL.into_iter().find(|p| *p as u8 == k)
    }
}

/// The tracepoint programs, their tracepoints and `perf list` names.
const PROGRAMS: [(&str, &str, &str); 6] = [
    (
        "ssc_retransmit",
        "tcp_retransmit_skb",
        "tcp:tcp_retransmit_skb",
    ),
    ("ssc_send_reset", "tcp_send_reset", "tcp:tcp_send_reset"),
    (
        "ssc_receive_reset",
        "tcp_receive_reset",
        "tcp:tcp_receive_reset",
    ),
    ("ssc_drop", "kfree_skb", "skb:kfree_skb"),
    (
        "ssc_state",
        "inet_sock_set_state",
        "sock:inet_sock_set_state",
    ),
    (
        "ssc_synack",
        "tcp_retransmit_synack",
        "tcp:tcp_retransmit_synack",
    ),
];

/// What a histogram measures (the numbering of bpf/counters.bpf.c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HistKind {
    /// A connection a listener accepted, from ESTABLISHED to CLOSE.
    Duration = 0,
    /// From the first SYN-ACK (the SYN's arrival) to the final ACK.
    Handshake = 1,
}

/// Histogram slots: slot `s` counts values of `[2^s, 2^(s+1))`
/// microseconds (slot 0 also 0).
pub const SLOTS: usize = 64;
/// The slot the programs keep the sum of the values in, in nanoseconds.
const SLOT_SUM: u8 = 255;

/// One histogram read from the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    pub netns: u32,
    /// The listener's port.
    pub port: u16,
    pub kind: HistKind,
    /// Values per log2 slot of microseconds (see [`SLOTS`]).
    pub slots: [u64; SLOTS],
    /// Sum of the values, nanoseconds.
    pub sum_ns: u64,
}

impl Histogram {
    pub fn count(&self) -> u64 {
        self.slots.iter().sum()
    }
}

/// A histogram key as the programs write it: netns (u32), port (u16),
/// kind (u8), slot (u8).
fn decode_hist_key(k: [u8; 8]) -> Option<(u32, u16, HistKind, u8)> {
    let netns = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
    let port = u16::from_ne_bytes([k[4], k[5]]);
    let kind = match k[6] {
        0 => HistKind::Duration,
        1 => HistKind::Handshake,
        _ => return None,
    };
    Some((netns, port, kind, k[7]))
}

/// Gather histogram entries (key, value) into histograms, sorted by
/// namespace, port and kind.
fn gather_hists(entries: impl IntoIterator<Item = ([u8; 8], u64)>) -> Vec<Histogram> {
    let mut by: std::collections::BTreeMap<(u32, u16, HistKind), Histogram> =
        std::collections::BTreeMap::new();
    for (k, v) in entries {
        let Some((netns, port, kind, slot)) = decode_hist_key(k) else {
            continue;
        };
        let h = by.entry((netns, port, kind)).or_insert(Histogram {
            netns,
            port,
            kind,
            slots: [0; SLOTS],
            sum_ns: 0,
        });
        if slot == SLOT_SUM {
            h.sum_ns = v;
        } else if let Some(s) = h.slots.get_mut(usize::from(slot)) {
            *s = v;
        }
    }
    by.into_values().collect()
}

/// Drop reasons that are no packet lost (`enum skb_drop_reason` names
/// without the `SKB_DROP_REASON_` prefix), not counted: a packet used up
/// normally, a free without a reason, and a closing socket's queues freed.
pub const NOT_DROPS: [&str; 3] = ["SKB_CONSUMED", "NOT_SPECIFIED", "QUEUE_PURGE"];

/// One counter read from the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCount {
    /// Inode of the network namespace (0 when the kernel gave none).
    pub netns: u32,
    pub port: u16,
    pub kind: PortKind,
    pub count: u64,
}

/// Packets dropped for one reason, read from the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCount {
    pub netns: u32,
    pub port: u16,
    /// The reason's name in this kernel's `enum skb_drop_reason`, without
    /// the `SKB_DROP_REASON_` prefix (`NO_SOCKET`, `NETFILTER_DROP`, ...);
    /// `REASON_<n>` for a value the enum does not name.
    pub reason: String,
    pub count: u64,
}

/// A drop key as the programs write it: netns (u32), port (u16),
/// padding (u16), reason (u32), in host byte order.
fn decode_drop_key(k: [u8; 12]) -> (u32, u16, u32) {
    let netns = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
    let port = u16::from_ne_bytes([k[4], k[5]]);
    let reason = u32::from_ne_bytes([k[8], k[9], k[10], k[11]]);
    (netns, port, reason)
}

/// The values of the [`NOT_DROPS`] reasons in this kernel, for the
/// programs' `cfg_drop_skip` (0, which is never a drop, for one the
/// kernel does not have).
fn skipped_reasons(r: &Reasons) -> [u32; 3] {
    NOT_DROPS.map(|name| {
        r.drop
            .iter()
            .find(|(_, n)| n.as_str() == name)
            .map_or(0, |(v, _)| *v)
    })
}

/// The map key as the programs write it: netns (u32), port (u16), kind
/// (u8), padding, in host byte order.
fn decode_key(k: [u8; 8]) -> Option<(u32, u16, PortKind)> {
    let netns = u32::from_ne_bytes([k[0], k[1], k[2], k[3]]);
    let port = u16::from_ne_bytes([k[4], k[5]]);
    Some((netns, port, PortKind::from_u8(k[6])?))
}

/// The attached programs and their map.
pub struct PortCounters {
    // Holds the programs' links: dropped, they detach.
    _ebpf: Ebpf,
    counts: BpfHash<MapData, [u8; 8], u64>,
    drops: BpfHash<MapData, [u8; 12], u64>,
    hists: BpfHash<MapData, [u8; 8], u64>,
    full: Array<MapData, u64>,
    /// Reason names, read from the kernel's BTF at load.
    reasons: Reasons,
    /// Tracepoints this kernel lacks (their counters stay absent).
    pub skipped: Vec<Skipped>,
}

impl PortCounters {
    /// Load and attach. Errors say why (no BTF, no privilege, ...); the
    /// caller decides whether that is fatal.
    pub fn start() -> Result<PortCounters, TraceError> {
        if OBJECT.is_empty() {
            return Err(TraceError::Arch);
        }
        preflight()?;
        // The reason names first: the raw BTF they are read from is freed
        // before aya parses it again (the two would add to the peak RSS).
        let raw = std::fs::read(crate::loader::VMLINUX_BTF).unwrap_or_default();
        let reasons = Reasons::from_btf(&raw);
        let skip = skipped_reasons(&reasons);
        // On newer kernels (6.18 here) tcp_retransmit_skb also fires for attempts
        // that failed (its third argument, err); only sent ones count.
        let retransmit_err = u8::from(
            crate::names::tracepoint_args(&raw, "tcp_retransmit_skb").is_some_and(|n| n >= 3),
        );
        drop(raw);
        let btf = Btf::from_sys_fs()
            .map_err(|e| TraceError::NoBtf(format!("could not be parsed ({})", chain(&e))))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .override_global("cfg_drop_skip", &skip, true)
            .override_global("cfg_retransmit_err", &retransmit_err, true)
            .load(OBJECT)
            .map_err(|e| {
                if denied(&e) {
                    TraceError::Denied(chain(&e))
                } else {
                    TraceError::Load(chain(&e))
                }
            })?;
        let mut skipped = Vec::new();
        let mut attached = 0;
        for (program, tracepoint, event) in PROGRAMS {
            let r = (|| -> Result<(), Box<dyn std::error::Error + 'static>> {
                let prog: &mut BtfTracePoint = ebpf
                    .program_mut(program)
                    .ok_or_else(|| format!("program {program} is not in the object"))?
                    .try_into()?;
                prog.load(tracepoint, &btf)?;
                prog.attach()?;
                Ok(())
            })();
            match r {
                Ok(()) => attached += 1,
                Err(e) if denied(e.as_ref()) => return Err(TraceError::Denied(chain(e.as_ref()))),
                Err(e) => skipped.push(Skipped {
                    event,
                    reason: chain(e.as_ref()),
                }),
            }
        }
        if attached == 0 {
            let why = skipped
                .first()
                .map(|s| format!("{}: {}", s.event, s.reason))
                .unwrap_or_default();
            return Err(TraceError::Load(format!(
                "none of the counting programs could be attached ({why})"
            )));
        }
        let counts = take_map(&mut ebpf, "port_counts")?;
        let drops = take_map(&mut ebpf, "drop_counts")?;
        let hists = take_map(&mut ebpf, "hist_counts")?;
        let full = take_map(&mut ebpf, "port_counts_full")?;
        Ok(PortCounters {
            _ebpf: ebpf,
            counts,
            drops,
            hists,
            full,
            reasons,
            skipped,
        })
    }

    /// Every counter, in no particular order. Counters only grow while
    /// the programs are attached; a key appears at its first event.
    pub fn read(&self) -> Vec<PortCount> {
        self.counts
            .iter()
            .filter_map(|r| r.ok())
            .filter_map(|(k, count)| {
                let (netns, port, kind) = decode_key(k)?;
                Some(PortCount {
                    netns,
                    port,
                    kind,
                    count,
                })
            })
            .collect()
    }

    /// Every drop counter, in no particular order, with the reason's name.
    pub fn read_drops(&self) -> Vec<DropCount> {
        self.drops
            .iter()
            .filter_map(|r| r.ok())
            .map(|(k, count)| {
                let (netns, port, reason) = decode_drop_key(k);
                DropCount {
                    netns,
                    port,
                    reason: self.reasons.drop_name(reason),
                    count,
                }
            })
            .collect()
    }

    /// The handshake and duration histograms, by namespace, port, kind.
    pub fn read_histograms(&self) -> Vec<Histogram> {
        gather_hists(self.hists.iter().filter_map(|r| r.ok()))
    }

    /// Events not counted because a map was full (16384 keys for the
    /// counters and drops, 32768 histogram slots).
    pub fn overflowed(&self) -> u64 {
        self.full.get(&0, 0).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_as_the_programs_write_them() {
        let mut k = [0u8; 8];
        k[..4].copy_from_slice(&4026531840u32.to_ne_bytes());
        k[4..6].copy_from_slice(&8080u16.to_ne_bytes());
        k[6] = 2;
        assert_eq!(
            decode_key(k),
            Some((4026531840, 8080, PortKind::ResetReceived))
        );
        k[6] = 9;
        assert_eq!(decode_key(k), None);
    }

    #[test]
    fn drop_keys_decode_as_the_programs_write_them() {
        let mut k = [0u8; 12];
        k[..4].copy_from_slice(&4026531840u32.to_ne_bytes());
        k[4..6].copy_from_slice(&443u16.to_ne_bytes());
        k[8..].copy_from_slice(&0x1_0003u32.to_ne_bytes());
        assert_eq!(decode_drop_key(k), (4026531840, 443, 0x1_0003));
    }

    #[test]
    fn histogram_slots_and_sums_gather_per_port_and_kind() {
        let key = |port: u16, kind: u8, slot: u8| {
            let mut k = [0u8; 8];
            k[..4].copy_from_slice(&7u32.to_ne_bytes());
            k[4..6].copy_from_slice(&port.to_ne_bytes());
            k[6] = kind;
            k[7] = slot;
            k
        };
        let h = gather_hists([
            (key(80, 0, 18), 2),
            (key(80, 0, 3), 1),
            (key(80, 0, 255), 600_000_000),
            (key(80, 1, 6), 4),
            (key(80, 9, 6), 4),  // unknown kind: skipped
            (key(80, 1, 70), 1), // beyond the slots: skipped
        ]);
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].port, h[0].kind), (80, HistKind::Duration));
        assert_eq!((h[0].slots[18], h[0].slots[3], h[0].count()), (2, 1, 3));
        assert_eq!(h[0].sum_ns, 600_000_000);
        assert_eq!(
            (h[1].kind, h[1].count(), h[1].sum_ns),
            (HistKind::Handshake, 4, 0)
        );
    }

    #[test]
    fn skipped_reasons_are_looked_up_by_name() {
        let mut r = Reasons::default();
        for (v, n) in [
            (1, "SKB_CONSUMED"),
            (2, "NOT_SPECIFIED"),
            (3, "NO_SOCKET"),
            (77, "QUEUE_PURGE"),
        ] {
            r.drop.insert(v, n.to_string());
        }
        assert_eq!(skipped_reasons(&r), [1, 2, 77]);
        r.drop.remove(&77);
        assert_eq!(skipped_reasons(&r), [1, 2, 0], "absent: 0, never a drop");
    }
}
