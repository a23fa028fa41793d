//! Counters kept in kernel maps for `sockscope export --bpf`: TCP
//! retransmits and resets sent and received, per network namespace and
//! local port (bpf/counters.bpf.c). The programs only increment a hash map;
//! nothing goes through a ring buffer, and user space reads the map when it
//! is asked to ([`PortCounters::read`], at scrape time). The programs stay
//! attached while the [`PortCounters`] lives: dropping it detaches them.

use crate::loader::{Skipped, TraceError, chain, denied, preflight, take_map};
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

/// The programs, their tracepoints and `perf list` names.
const PROGRAMS: [(&str, &str, &str); 3] = [
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
];

/// One counter read from the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortCount {
    /// Inode of the network namespace (0 when the kernel gave none).
    pub netns: u32,
    pub port: u16,
    pub kind: PortKind,
    pub count: u64,
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
    full: Array<MapData, u64>,
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
        let btf = Btf::from_sys_fs()
            .map_err(|e| TraceError::NoBtf(format!("could not be parsed ({})", chain(&e))))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
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
        let full = take_map(&mut ebpf, "port_counts_full")?;
        Ok(PortCounters {
            _ebpf: ebpf,
            counts,
            full,
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

    /// Events not counted because the map was full (16384 keys).
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
}
