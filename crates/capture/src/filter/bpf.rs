//! Classic BPF: instruction encoding (linux/filter.h, linux/bpf_common.h)
//! and an interpreter with the kernel's semantics for the instructions
//! sockscope and libpcap emit. It runs the file-mode filter and the tests.

pub const LD: u16 = 0x00;
pub const LDX: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const STX: u16 = 0x03;
pub const ALU: u16 = 0x04;
pub const JMP: u16 = 0x05;
pub const RET: u16 = 0x06;
pub const MISC: u16 = 0x07;
pub const W: u16 = 0x00;
pub const H: u16 = 0x08;
pub const B: u16 = 0x10;
pub const IMM: u16 = 0x00;
pub const ABS: u16 = 0x20;
pub const IND: u16 = 0x40;
pub const MEM: u16 = 0x60;
pub const LEN: u16 = 0x80;
pub const MSH: u16 = 0xa0;
pub const ADD: u16 = 0x00;
pub const SUB: u16 = 0x10;
pub const MUL: u16 = 0x20;
pub const DIV: u16 = 0x30;
pub const OR: u16 = 0x40;
pub const AND: u16 = 0x50;
pub const LSH: u16 = 0x60;
pub const RSH: u16 = 0x70;
pub const NEG: u16 = 0x80;
pub const MOD: u16 = 0x90;
pub const XOR: u16 = 0xa0;
pub const JA: u16 = 0x00;
pub const JEQ: u16 = 0x10;
pub const JGT: u16 = 0x20;
pub const JGE: u16 = 0x30;
pub const JSET: u16 = 0x40;
pub const K: u16 = 0x00;
pub const X: u16 = 0x08;
pub const A: u16 = 0x10;
pub const TAX: u16 = 0x00;
pub const TXA: u16 = 0x80;
/// Ancillary data offsets (SKF_AD_OFF + n).
pub const SKF_AD_OFF: u32 = 0xffff_f000;
pub const SKF_AD_PROTOCOL: u32 = 0;
pub const SKF_AD_PKTTYPE: u32 = 4;
pub const SKF_AD_VLAN_TAG: u32 = 44;
pub const SKF_AD_VLAN_TAG_PRESENT: u32 = 48;

/// One instruction (struct sock_filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// What the kernel knows beside the bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Meta {
    /// skb->protocol (an ethertype), for SKF_AD_PROTOCOL.
    pub protocol: u16,
    /// skb->pkt_type.
    pub pkttype: u32,
    /// Length on the wire (BPF_LEN).
    pub wire_len: u32,
    /// The VLAN tag the kernel took out of the frame (skb->vlan_tci), for
    /// SKF_AD_VLAN_TAG and SKF_AD_VLAN_TAG_PRESENT.
    pub vlan_tci: Option<u16>,
}

fn load(pkt: &[u8], off: u32, size: u16, meta: &Meta) -> Option<u32> {
    if off >= SKF_AD_OFF {
        return match off - SKF_AD_OFF {
            SKF_AD_PROTOCOL => Some(meta.protocol as u32),
            SKF_AD_PKTTYPE => Some(meta.pkttype),
            SKF_AD_VLAN_TAG => Some(meta.vlan_tci.unwrap_or(0) as u32),
            SKF_AD_VLAN_TAG_PRESENT => Some(meta.vlan_tci.is_some() as u32),
            _ => None,
        };
    }
    let o = off as usize;
    let n = match size {
        W => 4,
        H => 2,
        _ => 1,
    };
    let b = pkt.get(o..o.checked_add(n)?)?;
    Some(match n {
        4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        2 => u16::from_be_bytes([b[0], b[1]]) as u32,
        _ => b[0] as u32,
    })
}

/// Run a program over a packet: the number of bytes to keep (0 drops).
/// Out-of-range loads and bad jumps drop the packet, as in the kernel.
pub fn run(prog: &[Insn], pkt: &[u8], meta: &Meta) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; 16];
    let mut pc = 0usize;
    let mut steps = 0;
    while pc < prog.len() && steps < 100_000 {
        steps += 1;
        let i = prog[pc];
        pc += 1;
        let class = i.code & 0x07;
        match class {
            LD => {
                let mode = i.code & 0xe0;
                let size = i.code & 0x18;
                a = match mode {
                    IMM => i.k,
                    ABS => match load(pkt, i.k, size, meta) {
                        Some(v) => v,
                        None => return 0,
                    },
                    IND => match load(pkt, x.wrapping_add(i.k), size, meta) {
                        Some(v) => v,
                        None => return 0,
                    },
                    MEM => mem[(i.k & 15) as usize],
                    LEN => meta.wire_len,
                    _ => return 0,
                };
            }
            LDX => {
                let mode = i.code & 0xe0;
                x = match mode {
                    IMM => i.k,
                    MEM => mem[(i.k & 15) as usize],
                    LEN => meta.wire_len,
                    MSH => match load(pkt, i.k, B, meta) {
                        Some(v) => (v & 0xf) * 4,
                        None => return 0,
                    },
                    _ => return 0,
                };
            }
            ST => mem[(i.k & 15) as usize] = a,
            STX => mem[(i.k & 15) as usize] = x,
            ALU => {
                let v = if i.code & X != 0 { x } else { i.k };
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(v),
                    SUB => a.wrapping_sub(v),
                    MUL => a.wrapping_mul(v),
                    DIV => {
                        if v == 0 {
                            return 0;
                        }
                        a / v
                    }
                    MOD => {
                        if v == 0 {
                            return 0;
                        }
                        a % v
                    }
                    OR => a | v,
                    AND => a & v,
                    XOR => a ^ v,
                    LSH => a.checked_shl(v).unwrap_or(0),
                    RSH => a.checked_shr(v).unwrap_or(0),
                    NEG => a.wrapping_neg(),
                    _ => return 0,
                };
            }
            JMP => {
                let v = if i.code & X != 0 { x } else { i.k };
                let op = i.code & 0xf0;
                if op == JA {
                    pc = pc.saturating_add(i.k as usize);
                    continue;
                }
                let cond = match op {
                    JEQ => a == v,
                    JGT => a > v,
                    JGE => a >= v,
                    JSET => a & v != 0,
                    _ => return 0,
                };
                pc += if cond { i.jt } else { i.jf } as usize;
            }
            RET => {
                return match i.code & 0x18 {
                    A => a,
                    _ => i.k,
                };
            }
            MISC => {
                if i.code & 0xf8 == TXA {
                    a = x;
                } else {
                    x = a;
                }
            }
            _ => return 0,
        }
    }
    0
}

/// Parse `tcpdump -ddd` output ("N" then "code jt jf k" lines).
pub fn parse_ddd(s: &str) -> Option<Vec<Insn>> {
    let mut lines = s.lines().filter(|l| !l.trim().is_empty());
    let n: usize = lines.next()?.trim().parse().ok()?;
    let mut v = Vec::with_capacity(n);
    for l in lines {
        let f: Vec<u32> = l
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        if f.len() != 4 {
            return None;
        }
        v.push(Insn {
            code: f[0] as u16,
            jt: f[1] as u8,
            jf: f[2] as u8,
            k: f[3],
        });
    }
    (v.len() == n).then_some(v)
}
