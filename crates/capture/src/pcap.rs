//! Reading pcap and pcapng files as a stream, and writing pcapng.
//!
//! [`Reader`] detects the format from the first four bytes:
//!
//! - pcap ("libpcap" format): magic `a1b2c3d4` (microsecond timestamps) or
//!   `a1b23c4d` (nanosecond), in either byte order; one link type per file.
//! - pcapng: any number of sections (each Section Header Block sets its own
//!   byte order), Interface Description Blocks (link type, snap length,
//!   `if_name`, `if_tsresol`, `if_tsoffset`), Enhanced Packet Blocks (with
//!   `opt_comment` and `epb_flags`), Simple Packet Blocks and the obsolete
//!   Packet Block. Other blocks (name resolution, statistics, custom, ...)
//!   are skipped.
//!
//! Records borrow the reader's buffer, so reading allocates nothing per
//! packet and memory stays bounded by the largest record. A file that ends
//! inside a record, or whose lengths cannot be right, gives a
//! [`PcapError`] naming the byte offset.
//!
//! [`PcapngWriter`] writes a section header, one interface block per
//! interface and an Enhanced Packet Block per packet, with nanosecond
//! timestamps and an optional comment that Wireshark shows as
//! `frame.comment`.

use std::io::{self, Read, Write};

/// The largest record we accept; anything larger means a corrupt file.
pub const MAX_RECORD: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    #[error("reading the capture: {0}")]
    Io(#[from] io::Error),
    #[error(
        "not a pcap or pcapng file (starts with {magic:08x}; expected a1b2c3d4, a1b23c4d or 0a0d0d0a)"
    )]
    NotACapture { magic: u32 },
    #[error("the file is empty")]
    Empty,
    #[error("file truncated at byte {offset}: {what} needs {need} bytes, only {have} left")]
    Truncated {
        offset: u64,
        what: &'static str,
        need: usize,
        have: usize,
    },
    #[error("corrupt capture at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

impl sockscope::error::Classify for PcapError {
    fn kind(&self) -> sockscope::error::Kind {
        // The file is the problem, whatever went wrong reading it (as for
        // a file that does not exist: the path given is the fix).
        sockscope::error::Kind::Input
    }
}

/// One interface of a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub link: u32,
    pub snaplen: u32,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Timestamp units per second.
    pub units_per_sec: u64,
    /// Seconds to add to every timestamp (`if_tsoffset`).
    pub ts_offset_secs: i64,
}

impl Interface {
    fn new(link: u32, snaplen: u32) -> Interface {
        Interface {
            link,
            snaplen,
            name: None,
            description: None,
            units_per_sec: 1_000_000,
            ts_offset_secs: 0,
        }
    }
    fn to_ns(&self, ts: u64) -> u64 {
        let u = self.units_per_sec.max(1);
        let secs = (ts / u) as i128 + self.ts_offset_secs as i128;
        let frac = ((ts % u) as u128 * 1_000_000_000u128 / u as u128) as i128;
        (secs * 1_000_000_000 + frac).clamp(0, u64::MAX as i128) as u64
    }
}

/// The container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pcap { nanos: bool, swapped: bool },
    Pcapng,
}

/// One packet record, borrowed from the reader.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub ts_ns: u64,
    pub iface: u32,
    pub link: u32,
    pub wire_len: u32,
    pub data: &'a [u8],
    /// The first `opt_comment` of an Enhanced Packet Block.
    pub comment: Option<&'a str>,
    /// `epb_flags` (bits 0-1: direction, 1 inbound, 2 outbound).
    pub flags: Option<u32>,
    /// Records just before this packet that are not packets but that
    /// Wireshark numbers as frames (pcapng Custom Blocks and systemd
    /// Journal Export Blocks): add them to the frame count first to keep
    /// Wireshark's frame numbers.
    pub other_records_before: u64,
}

/// Streaming reader of pcap and pcapng.
pub struct Reader<R: Read> {
    src: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// File offset of `buf[pos]`.
    offset: u64,
    eof: bool,
    format: Format,
    /// pcapng: byte order of the current section is swapped.
    swapped: bool,
    ifaces: Vec<Interface>,
    /// Records read since the last packet that are not packets but take a
    /// frame number in Wireshark.
    other_records: u64,
}

fn u16_at(b: &[u8], at: usize, sw: bool) -> u16 {
    let v = u16::from_ne_bytes([b[at], b[at + 1]]);
    if sw { v.swap_bytes() } else { v }
}
fn u32_at(b: &[u8], at: usize, sw: bool) -> u32 {
    let v = u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    if sw { v.swap_bytes() } else { v }
}

const SHB: u32 = 0x0a0d_0d0a;
const BOM: u32 = 0x1a2b_3c4d;

impl<R: Read> Reader<R> {
    /// Open a capture: reads the file header (and for pcapng, the first
    /// section header).
    pub fn new(src: R) -> Result<Reader<R>, PcapError> {
        let mut r = Reader {
            src,
            buf: vec![0; 1 << 20],
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
            format: Format::Pcapng,
            swapped: false,
            ifaces: Vec::new(),
            other_records: 0,
        };
        if !r.fill(4)? {
            return if r.end == r.pos {
                Err(PcapError::Empty)
            } else {
                Err(r.truncated("the file header", 4))
            };
        }
        let magic_be = u32::from_be_bytes(r.peek4());
        let magic_le = u32::from_le_bytes(r.peek4());
        let native_le = cfg!(target_endian = "little");
        let (nanos, file_le) = match (magic_be, magic_le) {
            (0xa1b2_c3d4, _) => (false, false),
            (_, 0xa1b2_c3d4) => (false, true),
            (0xa1b2_3c4d, _) => (true, false),
            (_, 0xa1b2_3c4d) => (true, true),
            (SHB, _) => {
                r.format = Format::Pcapng;
                r.read_shb()?;
                return Ok(r);
            }
            _ => return Err(PcapError::NotACapture { magic: magic_be }),
        };
        if !r.fill(24)? {
            return Err(r.truncated("the pcap file header", 24));
        }
        let swapped = file_le != native_le;
        let h = &r.buf[r.pos..r.pos + 24];
        let major = u16_at(h, 4, swapped);
        let snaplen = u32_at(h, 16, swapped);
        // The upper bits of the link-type field carry FCS information
        // (bit 26: an FCS length is given; bits 28-31: that length), the
        // link type is the low 26 bits (libpcap's LT_LINKTYPE).
        let link = u32_at(h, 20, swapped) & 0x03ff_ffff;
        if major != 2 {
            return Err(PcapError::Corrupt {
                offset: 4,
                reason: format!("pcap major version {major}, expected 2"),
            });
        }
        r.consume(24);
        r.format = Format::Pcap { nanos, swapped };
        let mut i = Interface::new(link, snaplen);
        i.units_per_sec = if nanos { 1_000_000_000 } else { 1_000_000 };
        r.ifaces.push(i);
        Ok(r)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Interfaces seen so far (pcap files have exactly one).
    pub fn interfaces(&self) -> &[Interface] {
        &self.ifaces
    }

    /// Byte offset of the next unread record.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn peek4(&self) -> [u8; 4] {
        [
            self.buf[self.pos],
            self.buf[self.pos + 1],
            self.buf[self.pos + 2],
            self.buf[self.pos + 3],
        ]
    }

    fn truncated(&self, what: &'static str, need: usize) -> PcapError {
        PcapError::Truncated {
            offset: self.offset,
            what,
            need,
            have: self.end - self.pos,
        }
    }

    fn corrupt(&self, reason: String) -> PcapError {
        PcapError::Corrupt {
            offset: self.offset,
            reason,
        }
    }

    /// Make `n` bytes available at `pos`. False at end of file with fewer.
    fn fill(&mut self, n: usize) -> Result<bool, PcapError> {
        if self.end - self.pos >= n {
            return Ok(true);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.buf.len() < n {
            self.buf.resize(n.next_power_of_two(), 0);
        }
        while self.end < n && !self.eof {
            match self.src.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.end - self.pos >= n)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    /// At a clean end of file (no partial record)?
    fn at_eof(&mut self) -> Result<bool, PcapError> {
        Ok(!self.fill(1)?)
    }

    fn read_shb(&mut self) -> Result<(), PcapError> {
        if !self.fill(12)? {
            return Err(self.truncated("a section header block", 12));
        }
        let b = &self.buf[self.pos..self.pos + 12];
        let bom = u32::from_ne_bytes([b[8], b[9], b[10], b[11]]);
        self.swapped = if bom == BOM {
            false
        } else if bom.swap_bytes() == BOM {
            true
        } else {
            return Err(self.corrupt(format!("pcapng byte-order magic {bom:08x}")));
        };
        let len = u32_at(b, 4, self.swapped) as usize;
        if !(28..=MAX_RECORD).contains(&len) || !len.is_multiple_of(4) {
            return Err(self.corrupt(format!("section header block length {len}")));
        }
        if !self.fill(len)? {
            return Err(self.truncated("a section header block", len));
        }
        let major = u16_at(&self.buf, self.pos + 12, self.swapped);
        if major != 1 {
            return Err(self.corrupt(format!("pcapng major version {major}, expected 1")));
        }
        self.check_trailer(len)?;
        self.consume(len);
        // A new section starts its own interface numbering.
        self.ifaces.clear();
        Ok(())
    }

    fn check_trailer(&self, len: usize) -> Result<(), PcapError> {
        let t = u32_at(&self.buf, self.pos + len - 4, self.swapped) as usize;
        if t != len {
            return Err(self.corrupt(format!(
                "block length {len} does not match its trailing copy {t}"
            )));
        }
        Ok(())
    }

    /// The next packet, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        match self.format {
            Format::Pcap { swapped, .. } => self.next_pcap(swapped),
            Format::Pcapng => self.next_pcapng(),
        }
    }

    fn next_pcap(&mut self, sw: bool) -> Result<Option<Record<'_>>, PcapError> {
        if self.at_eof()? {
            return Ok(None);
        }
        if !self.fill(16)? {
            return Err(self.truncated("a packet record header", 16));
        }
        let h = &self.buf[self.pos..self.pos + 16];
        let sec = u32_at(h, 0, sw) as u64;
        let frac = u32_at(h, 4, sw) as u64;
        let incl = u32_at(h, 8, sw) as usize;
        let orig = u32_at(h, 12, sw);
        if incl > MAX_RECORD {
            return Err(self.corrupt(format!(
                "packet record claims {incl} captured bytes (corrupt file?)"
            )));
        }
        if !self.fill(16 + incl)? {
            return Err(self.truncated("a packet record", 16 + incl));
        }
        let iface = &self.ifaces[0];
        let ts_ns = sec * 1_000_000_000
            + if iface.units_per_sec == 1_000_000_000 {
                frac
            } else {
                frac * 1000
            };
        let link = iface.link;
        let start = self.pos + 16;
        self.consume(16 + incl);
        Ok(Some(Record {
            ts_ns,
            iface: 0,
            link,
            wire_len: orig,
            data: &self.buf[start..start + incl],
            comment: None,
            flags: None,
            other_records_before: 0,
        }))
    }

    fn next_pcapng(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        loop {
            if self.at_eof()? {
                return Ok(None);
            }
            if !self.fill(8)? {
                return Err(self.truncated("a block header", 8));
            }
            let btype = u32_at(&self.buf, self.pos, self.swapped);
            if btype == SHB {
                self.read_shb()?;
                continue;
            }
            let len = u32_at(&self.buf, self.pos + 4, self.swapped) as usize;
            if len < 12 || !len.is_multiple_of(4) || len > MAX_RECORD {
                return Err(self.corrupt(format!("block of type {btype:#x} has length {len}")));
            }
            if !self.fill(len)? {
                return Err(self.truncated("a block", len));
            }
            self.check_trailer(len)?;
            match btype {
                1 => {
                    self.read_idb(len)?;
                    self.consume(len);
                }
                6 | 2 | 3 => {
                    let n = std::mem::take(&mut self.other_records);
                    let rec = if btype == 3 {
                        self.read_spb(len)
                    } else {
                        self.read_epb(btype, len)
                    };
                    return rec.map(|mut r| {
                        r.other_records_before = n;
                        Some(r)
                    });
                }
                // Custom Blocks (copiable or not) and systemd Journal
                // Export Blocks: Wireshark shows each as a frame.
                0x0000_0bad | 0x4000_0bad | 9 => {
                    self.other_records += 1;
                    self.consume(len);
                }
                _ => self.consume(len),
            }
        }
    }

    fn read_idb(&mut self, len: usize) -> Result<(), PcapError> {
        if len < 20 {
            return Err(self.corrupt(format!("interface description block length {len}")));
        }
        let sw = self.swapped;
        let b = &self.buf[self.pos..self.pos + len];
        let mut i = Interface::new(u16_at(b, 8, sw) as u32, u32_at(b, 12, sw));
        for (code, val) in Options::new(&b[16..len - 4], sw) {
            match code {
                2 => i.name = Some(String::from_utf8_lossy(val).into_owned()),
                3 => i.description = Some(String::from_utf8_lossy(val).into_owned()),
                9 if !val.is_empty() => {
                    let r = val[0];
                    let exp = (r & 0x7f) as u32;
                    i.units_per_sec = if r & 0x80 != 0 {
                        1u64.checked_shl(exp).unwrap_or(0)
                    } else {
                        10u64.checked_pow(exp).unwrap_or(0)
                    };
                    if i.units_per_sec == 0 {
                        return Err(self.corrupt(format!("if_tsresol {r:#x} is out of range")));
                    }
                }
                14 if val.len() == 8 => {
                    let v = u64::from_ne_bytes(val.try_into().unwrap_or([0; 8]));
                    i.ts_offset_secs = if sw { v.swap_bytes() } else { v } as i64;
                }
                _ => {}
            }
        }
        self.ifaces.push(i);
        Ok(())
    }

    fn read_epb(&mut self, btype: u32, len: usize) -> Result<Record<'_>, PcapError> {
        let sw = self.swapped;
        let start = self.pos;
        let b = &self.buf[start..start + len];
        if len < 32 {
            return Err(self.corrupt(format!("packet block length {len}")));
        }
        // The obsolete Packet Block has a 16-bit interface id and a 16-bit
        // drop count where the Enhanced Packet Block has a 32-bit id.
        let iface = if btype == 6 {
            u32_at(b, 8, sw)
        } else {
            u16_at(b, 8, sw) as u32
        };
        let ts = ((u32_at(b, 12, sw) as u64) << 32) | u32_at(b, 16, sw) as u64;
        let caplen = u32_at(b, 20, sw) as usize;
        let orig = u32_at(b, 24, sw);
        let data_end = 28 + caplen;
        let padded = data_end.div_ceil(4) * 4;
        if padded + 4 > len {
            return Err(self.corrupt(format!(
                "packet block of {len} bytes claims {caplen} captured bytes"
            )));
        }
        let Some(ifc) = self.ifaces.get(iface as usize) else {
            return Err(self.corrupt(format!(
                "packet on interface {iface}, but only {} interfaces are described",
                self.ifaces.len()
            )));
        };
        let ts_ns = ifc.to_ns(ts);
        let link = ifc.link;
        let mut comment = None;
        let mut flags = None;
        let opts_at = start + padded;
        for (code, val) in Options::new(&b[padded..len - 4], sw) {
            match code {
                1 if comment.is_none() => {
                    // Where the value sits in the buffer, to borrow it again below.
                    let at = opts_at + (val.as_ptr() as usize - b[padded..].as_ptr() as usize);
                    comment = Some((at, val.len()));
                }
                2 if val.len() == 4 => flags = Some(u32_at(val, 0, sw)),
                _ => {}
            }
        }
        self.consume(len);
        let comment = comment.and_then(|(at, n)| std::str::from_utf8(&self.buf[at..at + n]).ok());
        Ok(Record {
            ts_ns,
            iface,
            link,
            wire_len: orig,
            data: &self.buf[start + 28..start + data_end],
            comment,
            flags,
            other_records_before: 0,
        })
    }

    fn read_spb(&mut self, len: usize) -> Result<Record<'_>, PcapError> {
        if len < 16 {
            return Err(self.corrupt(format!("simple packet block length {len}")));
        }
        let sw = self.swapped;
        let start = self.pos;
        let orig = u32_at(&self.buf, start + 8, sw);
        let Some(ifc) = self.ifaces.first() else {
            return Err(self.corrupt("simple packet block before any interface".into()));
        };
        let mut caplen = (orig as usize).min(len - 16);
        if ifc.snaplen != 0 {
            caplen = caplen.min(ifc.snaplen as usize);
        }
        let link = ifc.link;
        self.consume(len);
        Ok(Record {
            // Simple packet blocks carry no timestamp.
            ts_ns: 0,
            iface: 0,
            link,
            wire_len: orig,
            data: &self.buf[start + 12..start + 12 + caplen],
            comment: None,
            flags: None,
            other_records_before: 0,
        })
    }
}

/// Iterator over pcapng options (code, value); stops at opt_endofopt or at
/// the first option that does not fit.
struct Options<'a> {
    b: &'a [u8],
    sw: bool,
}

impl<'a> Options<'a> {
    fn new(b: &'a [u8], sw: bool) -> Options<'a> {
        Options { b, sw }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        if self.b.len() < 4 {
            return None;
        }
        let code = u16_at(self.b, 0, self.sw);
        let len = u16_at(self.b, 2, self.sw) as usize;
        if code == 0 || 4 + len > self.b.len() {
            return None;
        }
        let val = &self.b[4..4 + len];
        let adv = (4 + len.div_ceil(4) * 4).min(self.b.len());
        self.b = &self.b[adv..];
        Some((code, val))
    }
}

/// Writes pcapng: one section, interfaces added as needed, nanosecond
/// timestamps, a comment per packet.
pub struct PcapngWriter<W: Write> {
    w: W,
    ifaces: Vec<(u32, u32)>,
    scratch: Vec<u8>,
}

fn push_opt(v: &mut Vec<u8>, code: u16, val: &[u8]) {
    let len = val.len().min(u16::MAX as usize - 3);
    v.extend_from_slice(&code.to_ne_bytes());
    v.extend_from_slice(&(len as u16).to_ne_bytes());
    v.extend_from_slice(&val[..len]);
    while !v.len().is_multiple_of(4) {
        v.push(0);
    }
}

fn finish_block(v: &mut Vec<u8>) {
    // Block total length is at 4..8 and repeated at the end.
    let total = (v.len() + 4) as u32;
    v[4..8].copy_from_slice(&total.to_ne_bytes());
    v.extend_from_slice(&total.to_ne_bytes());
}

impl<W: Write> PcapngWriter<W> {
    /// Start a file: writes the Section Header Block naming `app`.
    pub fn new(mut w: W, app: &str) -> io::Result<PcapngWriter<W>> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&SHB.to_ne_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&BOM.to_ne_bytes());
        v.extend_from_slice(&1u16.to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&(-1i64).to_ne_bytes());
        push_opt(&mut v, 4, app.as_bytes()); // shb_userappl
        push_opt(&mut v, 0, &[]);
        finish_block(&mut v);
        w.write_all(&v)?;
        Ok(PcapngWriter {
            w,
            ifaces: Vec::new(),
            scratch: Vec::with_capacity(65536 + 256),
        })
    }

    /// The interface id for (link, snaplen), writing its description block
    /// the first time.
    pub fn interface(&mut self, link: u32, snaplen: u32, name: Option<&str>) -> io::Result<u32> {
        if let Some(i) = self.ifaces.iter().position(|&x| x == (link, snaplen)) {
            return Ok(i as u32);
        }
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&1u32.to_ne_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&(link as u16).to_ne_bytes());
        v.extend_from_slice(&0u16.to_ne_bytes());
        v.extend_from_slice(&snaplen.to_ne_bytes());
        if let Some(n) = name {
            push_opt(&mut v, 2, n.as_bytes()); // if_name
        }
        push_opt(&mut v, 9, &[9]); // if_tsresol: nanoseconds
        push_opt(&mut v, 0, &[]);
        finish_block(&mut v);
        self.w.write_all(&v)?;
        self.ifaces.push((link, snaplen));
        Ok(self.ifaces.len() as u32 - 1)
    }

    /// Write one packet as an Enhanced Packet Block.
    pub fn packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        wire_len: u32,
        data: &[u8],
        comment: Option<&str>,
    ) -> io::Result<()> {
        let v = &mut self.scratch;
        v.clear();
        v.extend_from_slice(&6u32.to_ne_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&iface.to_ne_bytes());
        v.extend_from_slice(&((ts_ns >> 32) as u32).to_ne_bytes());
        v.extend_from_slice(&(ts_ns as u32).to_ne_bytes());
        v.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        v.extend_from_slice(&wire_len.to_ne_bytes());
        v.extend_from_slice(data);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        if let Some(c) = comment {
            push_opt(v, 1, c.as_bytes());
            push_opt(v, 0, &[]);
        }
        finish_block(v);
        self.w.write_all(v)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

/// Write a classic pcap file header (used by tests and the benchmark
/// generator).
pub fn write_pcap_header<W: Write>(
    w: &mut W,
    link: u32,
    snaplen: u32,
    nanos: bool,
) -> io::Result<()> {
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    w.write_all(&magic.to_ne_bytes())?;
    w.write_all(&2u16.to_ne_bytes())?;
    w.write_all(&4u16.to_ne_bytes())?;
    w.write_all(&0i32.to_ne_bytes())?;
    w.write_all(&0u32.to_ne_bytes())?;
    w.write_all(&snaplen.to_ne_bytes())?;
    w.write_all(&link.to_ne_bytes())
}

/// Write one classic pcap record.
pub fn write_pcap_record<W: Write>(
    w: &mut W,
    ts_ns: u64,
    nanos: bool,
    wire_len: u32,
    data: &[u8],
) -> io::Result<()> {
    let sec = (ts_ns / 1_000_000_000) as u32;
    let frac = (ts_ns % 1_000_000_000) as u32;
    let frac = if nanos { frac } else { frac / 1000 };
    w.write_all(&sec.to_ne_bytes())?;
    w.write_all(&frac.to_ne_bytes())?;
    w.write_all(&(data.len() as u32).to_ne_bytes())?;
    w.write_all(&wire_len.to_ne_bytes())?;
    w.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (timestamp, interface, link type, bytes, comment) of each record.
    type Rec = (u64, u32, u32, Vec<u8>, Option<String>);

    fn collect(bytes: &[u8]) -> Result<Vec<Rec>, PcapError> {
        let mut r = Reader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push((
                rec.ts_ns,
                rec.iface,
                rec.link,
                rec.data.to_vec(),
                rec.comment.map(str::to_string),
            ));
        }
        Ok(out)
    }

    fn swap_pcap(native: &[u8]) -> Vec<u8> {
        // Byte-swap every header field of a classic pcap written natively.
        let mut v = native.to_vec();
        let sw = |v: &mut Vec<u8>, at: usize, n: usize| v[at..at + n].reverse();
        sw(&mut v, 0, 4);
        sw(&mut v, 4, 2);
        sw(&mut v, 6, 2);
        for at in [8, 12, 16, 20] {
            sw(&mut v, at, 4);
        }
        let mut at = 24;
        while at + 16 <= v.len() {
            let incl = u32::from_ne_bytes(v[at + 8..at + 12].try_into().unwrap()) as usize;
            for f in 0..4 {
                sw(&mut v, at + f * 4, 4);
            }
            at += 16 + incl;
        }
        v
    }

    #[test]
    fn pcap_micro_nano_and_swapped() {
        for nanos in [false, true] {
            let mut f = Vec::new();
            write_pcap_header(&mut f, 1, 65535, nanos).unwrap();
            write_pcap_record(&mut f, 1_700_000_000_123_456_789, nanos, 60, &[1, 2, 3]).unwrap();
            write_pcap_record(&mut f, 1_700_000_001_000_001_000, nanos, 4, &[4, 5, 6, 7]).unwrap();
            let want_ts = if nanos {
                1_700_000_000_123_456_789
            } else {
                1_700_000_000_123_456_000
            };
            for bytes in [f.clone(), swap_pcap(&f)] {
                let v = collect(&bytes).unwrap();
                assert_eq!(v.len(), 2);
                assert_eq!(v[0], (want_ts, 0, 1, vec![1, 2, 3], None));
                assert_eq!(v[1].0, 1_700_000_001_000_001_000);
                assert_eq!(v[1].3, vec![4, 5, 6, 7]);
            }
        }
    }

    #[test]
    fn pcapng_roundtrip_with_comments_and_two_interfaces() {
        let mut w = PcapngWriter::new(Vec::new(), "test").unwrap();
        let a = w.interface(1, 262144, Some("lo")).unwrap();
        let b = w.interface(276, 262144, Some("any")).unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(w.interface(1, 262144, None).unwrap(), 0);
        w.packet(a, 123_456_789_012, 100, &[9; 5], Some("pid 7 (curl)"))
            .unwrap();
        w.packet(b, 123_456_789_013, 3, &[1, 2, 3], None).unwrap();
        let bytes = w.into_inner();
        let v = collect(&bytes).unwrap();
        assert_eq!(
            v,
            vec![
                (
                    123_456_789_012,
                    0,
                    1,
                    vec![9; 5],
                    Some("pid 7 (curl)".into())
                ),
                (123_456_789_013, 1, 276, vec![1, 2, 3], None),
            ]
        );
        let r = Reader::new(&bytes[..]).unwrap();
        assert_eq!(
            r.interfaces().len(),
            0,
            "interfaces appear as blocks are read"
        );
    }

    #[test]
    fn truncated_and_garbage_files_are_errors_not_panics() {
        let mut f = Vec::new();
        write_pcap_header(&mut f, 1, 65535, false).unwrap();
        write_pcap_record(&mut f, 0, false, 60, &[0; 60]).unwrap();
        for n in 0..f.len() {
            let r = collect(&f[..n]);
            match n {
                0 => assert!(matches!(r, Err(PcapError::Empty))),
                24 => assert_eq!(r.unwrap().len(), 0),
                _ => assert!(
                    matches!(r, Err(PcapError::Truncated { .. })),
                    "prefix {n}: {r:?}"
                ),
            }
        }
        let e = collect(b"hello world, this is text").unwrap_err();
        assert_eq!(
            e.to_string(),
            "not a pcap or pcapng file (starts with 68656c6c; expected a1b2c3d4, a1b23c4d or 0a0d0d0a)"
        );
        let mut w = PcapngWriter::new(Vec::new(), "t").unwrap();
        let i = w.interface(1, 100, None).unwrap();
        w.packet(i, 1, 10, &[0; 10], Some("x")).unwrap();
        let g = w.into_inner();
        for n in 1..g.len() {
            let _ = collect(&g[..n]);
        }
        let mut bad = g.clone();
        let last = bad.len() - 4;
        bad[last] ^= 0xff; // trailing length no longer matches
        assert!(
            collect(&bad)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }
}
