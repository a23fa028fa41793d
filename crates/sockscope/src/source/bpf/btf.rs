//! Minimal readers of kernel BTF (/sys/kernel/btf/vmlinux): enough to find
//! structs' member offsets and functions' type ids. [`lookup`] reads in
//! chunks with no copy of the whole file (vmlinux BTF is ~5.5 MB; a lookup holds a
//! 64 KiB buffer, the members of the structs asked for, and where each
//! struct, union and modifier type starts: 8 bytes each).
//!
//! Two streaming passes: the string section, to learn at which offsets the
//! wanted names sit (BTF names things by string offset), then the type
//! section, numbering types as it goes and keeping the first struct and
//! the first function of each wanted name. Anonymous members are then
//! looked through, as C does, with small positioned reads. [`Btf`] holds
//! the whole file instead.
//!
//! Format: include/uapi/linux/btf.h.

use std::borrow::Cow;
use std::collections::HashMap;

const BTF_MAGIC: u16 = 0xeb9f;

// Kinds (BTF_KIND_*).
const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// Bytes read at a time.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data (bad magic or header)")]
    BadHeader,
    #[error("BTF type section is truncated or has an unknown kind {0}")]
    BadType(u32),
    #[error("BTF has no {0}")]
    Missing(String),
    #[error("reading BTF: {0}")]
    Io(String),
}

/// Positioned reads from BTF data: the sysfs file, or bytes (tests).
pub trait ReadAt {
    /// Read into `buf` from byte `off`; short only at the end of the data.
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize>;
    /// Size of the data in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// All of the data, where it is in memory (a mapping): then it is
    /// read in place, without chunks.
    fn whole(&self) -> Option<&[u8]> {
        None
    }
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, off)
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let n = buf.len().min(self.len() - start);
        buf[..n].copy_from_slice(&self[start..start + n]);
        Ok(n)
    }
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }
    fn whole(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// The `len` bytes at `start`, where the data is in memory and has them.
fn in_memory<R: ReadAt + ?Sized>(r: &R, start: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(start).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    r.whole()?.get(start..end)
}

/// Fill `buf` from `off`; `short` if the data ends first.
fn read_full<R: ReadAt + ?Sized>(
    r: &R,
    buf: &mut [u8],
    mut off: u64,
    short: BtfError,
) -> Result<(), BtfError> {
    let mut done = 0;
    while done < buf.len() {
        match r.read_at(&mut buf[done..], off) {
            Ok(0) => return Err(short),
            Ok(n) => {
                done += n;
                off += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BtfError::Io(e.to_string())),
        }
    }
    Ok(())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Bytes that follow a type's 12-byte header, by kind and vlen.
fn extra_len(kind: u32, vlen: usize) -> Result<usize, BtfError> {
    Ok(match kind {
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        KIND_ARRAY => 12,
        KIND_STRUCT | KIND_UNION => 12 * vlen,
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        2 | 7..=11 | KIND_FUNC | 16 | 18 => 0,
        k => return Err(BtfError::BadType(k)),
    })
}

/// Modifier kinds looked through to reach a member's type: typedef,
/// volatile, const, restrict, type tag.
fn is_modifier(kind: u32) -> bool {
    matches!(kind, 8..=11 | 18)
}

/// What to look up: structs with the members wanted of each, and functions.
#[derive(Clone, Copy, Debug)]
pub struct Wanted<'a> {
    pub structs: &'a [(&'a str, &'a [&'a str])],
    pub funcs: &'a [&'a str],
}

/// The answers: every member and function asked for was found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    members: HashMap<(String, String), u32>,
    funcs: HashMap<String, u32>,
    /// Type id of each struct asked for (for `bpf_rdonly_cast`).
    struct_ids: HashMap<String, u32>,
}

impl Found {
    /// Byte offset of `member` in `struct name` (both asked for).
    pub fn offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        Ok(self.bit_offset(name, member)? / 8)
    }

    /// Bit offset of `member` in `struct name`: where a bitfield starts.
    pub fn bit_offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        self.members
            .get(&(name.to_string(), member.to_string()))
            .copied()
            .ok_or_else(|| BtfError::Missing(format!("member {name}.{member}")))
    }

    /// Type id of `struct name` (asked for).
    pub fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.struct_ids
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::Missing(format!("struct {name}")))
    }

    /// Type id of the function `name` (asked for; a BPF attach target).
    pub fn func_id(&self, name: &str) -> Result<u32, BtfError> {
        self.funcs
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::Missing(format!("function {name}")))
    }
}

/// The sections, from the header.
struct Layout {
    types: u64,
    type_len: u64,
    strings: u64,
    str_len: u64,
}

fn layout<R: ReadAt + ?Sized>(r: &R) -> Result<Layout, BtfError> {
    let size = r.size().map_err(|e| BtfError::Io(e.to_string()))?;
    let mut h = [0u8; 24];
    if size < 24 {
        return Err(BtfError::BadHeader);
    }
    read_full(r, &mut h, 0, BtfError::BadHeader)?;
    if u16::from_le_bytes([h[0], h[1]]) != BTF_MAGIC {
        return Err(BtfError::BadHeader);
    }
    let f = |i| u64::from(u32_at(&h, i).unwrap_or(0));
    let hdr_len = f(4);
    let l = Layout {
        types: hdr_len + f(8),
        type_len: f(12),
        strings: hdr_len + f(16),
        str_len: f(20),
    };
    if l.types + l.type_len > size || l.strings + l.str_len > size {
        return Err(BtfError::BadHeader);
    }
    Ok(l)
}

/// Look up `want` in the BTF that `r` holds, reading it in chunks. Errors
/// name the first struct, member or function that is missing.
pub fn lookup<R: ReadAt + ?Sized>(r: &R, want: &Wanted) -> Result<Found, BtfError> {
    lookup_in_chunks(r, want, CHUNK)
}

fn lookup_in_chunks<R: ReadAt + ?Sized>(
    r: &R,
    want: &Wanted,
    chunk: usize,
) -> Result<Found, BtfError> {
    let l = layout(r)?;
    // Every name asked for; the string offsets where each sits.
    let mut names: Vec<&str> = Vec::new();
    for (s, ms) in want.structs {
        names.push(s);
        names.extend(ms.iter().copied());
    }
    names.extend(want.funcs.iter().copied());
    names.sort_unstable();
    names.dedup();
    let at = name_offsets(r, &l, &names, chunk)?;
    // A few entries, asked about for every struct and function: a bit per
    // offset's low 16 bits turns most away, a binary search finds the rest.
    let mut seen = vec![0u64; 1024];
    for &(o, _) in &at {
        seen[(o as usize >> 6) & 1023] |= 1 << (o & 63);
    }
    let at = |off: u32| {
        if seen[(off as usize >> 6) & 1023] & (1 << (off & 63)) == 0 {
            return None;
        }
        at.binary_search_by_key(&off, |e| e.0)
            .ok()
            .map(|i| &at[i].1)
    };
    let is = |off: u32, name: &str| at(off).is_some_and(|&i| names[i] == name);

    // In memory, the section is the stream's buffer; from a file, a
    // chunk at a time.
    let section = in_memory(r, l.types, l.type_len);
    let mut st = Stream {
        r,
        start: l.types,
        len: l.type_len,
        have: section.map_or(0, <[u8]>::len),
        buf: section.map_or_else(|| Cow::Owned(vec![0u8; chunk]), Cow::Borrowed),
        pos: 0,
        base: 0,
    };
    let mut id = 0u32;
    // Where each struct, union and modifier starts (for anonymous members).
    let mut starts: Vec<(u32, u32)> = Vec::new();
    // First struct of each wanted name: its kind_flag and members.
    let mut structs: HashMap<&str, (u32, bool, Vec<[u32; 3]>)> = HashMap::new();
    let mut funcs: HashMap<&str, u32> = HashMap::new();
    while st.base + (st.pos as u64) < l.type_len {
        st.fill(12)?;
        let (buf, pos) = (&st.buf, st.pos);
        let name_off = u32_at(buf, pos).unwrap_or(0);
        let info = u32_at(buf, pos + 4).unwrap_or(0);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let len = 12 + extra_len(kind, vlen)?;
        st.fill(len)?;
        let (buf, pos) = (&st.buf, st.pos);
        id += 1;
        let here = st.base + pos as u64;
        if kind == KIND_STRUCT || kind == KIND_UNION || is_modifier(kind) {
            starts.push((id, u32::try_from(here).map_err(|_| BtfError::BadHeader)?));
        }
        if kind == KIND_STRUCT
            && let Some(&i) = at(name_off)
            && want.structs.iter().any(|(s, _)| *s == names[i])
            && !structs.contains_key(names[i])
        {
            let members = (0..vlen)
                .map(|m| {
                    let b = pos + 12 + 12 * m;
                    [0, 4, 8].map(|k| u32_at(buf, b + k).unwrap_or(0))
                })
                .collect();
            structs.insert(names[i], (id, info >> 31 == 1, members));
        }
        if kind == KIND_FUNC
            && let Some(&i) = at(name_off)
            && want.funcs.contains(&names[i])
        {
            funcs.entry(names[i]).or_insert(id);
        }
        st.pos += len;
    }

    let types = Types { r, l: &l, starts };
    let mut found = Found::default();
    for (s, ms) in want.structs {
        let (sid, kind_flag, members) = structs
            .get(s)
            .ok_or_else(|| BtfError::Missing(format!("struct {s}")))?;
        found.struct_ids.insert(s.to_string(), *sid);
        let mut out = HashMap::new();
        types.walk(*kind_flag, members, 0, ms, &is, &mut out, 0)?;
        for m in *ms {
            let off = out
                .get(m)
                .ok_or_else(|| BtfError::Missing(format!("member {s}.{m}")))?;
            found.members.insert((s.to_string(), m.to_string()), *off);
        }
    }
    for f in want.funcs {
        let id = funcs
            .get(f)
            .ok_or_else(|| BtfError::Missing(format!("function {f}")))?;
        found.funcs.insert(f.to_string(), *id);
    }
    Ok(found)
}

/// A section read in chunks, record by record.
struct Stream<'a, R: ReadAt + ?Sized> {
    r: &'a R,
    /// The section: where it starts in the data, and its length.
    start: u64,
    len: u64,
    /// The chunk read, or the whole section when it is in memory.
    buf: Cow<'a, [u8]>,
    /// Valid bytes in `buf`.
    have: usize,
    /// The next record in `buf`.
    pos: usize,
    /// Offset in the section of `buf[0]`.
    base: u64,
}

impl<R: ReadAt + ?Sized> Stream<'_, R> {
    /// Make sure `n` bytes of the record at `pos` are in the buffer; a
    /// record that runs past the section is a truncated type section.
    fn fill(&mut self, n: usize) -> Result<(), BtfError> {
        if self.have - self.pos >= n {
            return Ok(());
        }
        let Cow::Owned(buf) = &mut self.buf else {
            // The whole section is here: the record runs past its end.
            return Err(BtfError::BadType(0));
        };
        buf.copy_within(self.pos..self.have, 0);
        self.base += self.pos as u64;
        self.have -= self.pos;
        self.pos = 0;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        let left = self.len - (self.base + self.have as u64);
        let more = ((buf.len() - self.have) as u64).min(left) as usize;
        if self.have + more < n {
            return Err(BtfError::BadType(0));
        }
        read_full(
            self.r,
            &mut buf[self.have..self.have + more],
            self.start + self.base + self.have as u64,
            BtfError::BadType(0),
        )?;
        self.have += more;
        Ok(())
    }
}

/// Which of a few names a string is: most strings of BTF's ~120,000 are
/// turned away by their length and first and last bytes (two bit tests)
/// before any is compared.
struct Matcher<'n> {
    names: &'n [&'n str],
    longest: usize,
    /// Per length: the first bytes, and the last bytes, of names that long.
    first: Vec<[u64; 4]>,
    last: Vec<[u64; 4]>,
}

impl<'n> Matcher<'n> {
    fn new(names: &'n [&'n str]) -> Matcher<'n> {
        let longest = names.iter().map(|n| n.len()).max().unwrap_or(0);
        let mut first = vec![[0u64; 4]; longest + 1];
        let mut last = vec![[0u64; 4]; longest + 1];
        for n in names.iter().map(|n| n.as_bytes()) {
            if let (Some(&a), Some(&z)) = (n.first(), n.last()) {
                first[n.len()][usize::from(a >> 6)] |= 1 << (a & 63);
                last[n.len()][usize::from(z >> 6)] |= 1 << (z & 63);
            }
        }
        Matcher {
            names,
            longest,
            first,
            last,
        }
    }

    /// The index in `names` of the name `s` is.
    fn find(&self, s: &[u8]) -> Option<usize> {
        let (&a, &z) = (s.first()?, s.last()?);
        let has =
            |set: &[[u64; 4]], c: u8| set[s.len()][usize::from(c >> 6)] & (1 << (c & 63)) != 0;
        if s.len() > self.longest || !has(&self.first, a) || !has(&self.last, z) {
            return None;
        }
        self.names.iter().position(|n| n.as_bytes() == s)
    }
}

/// With x a word of 8 bytes, `!(((x & LOW7) + LOW7) | x | LOW7)` has the
/// high bit of each byte set iff that byte is 0.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// Stream the string section; the offsets at which names of `names` sit
/// (offset -> index in `names`), in order of offset.
fn name_offsets<R: ReadAt + ?Sized>(
    r: &R,
    l: &Layout,
    names: &[&str],
    chunk: usize,
) -> Result<Vec<(u32, usize)>, BtfError> {
    let m = Matcher::new(names);
    let longest = m.longest;
    let mut at = Vec::new();
    let section = in_memory(r, l.strings, l.str_len);
    // In memory, the section is read as one chunk, in place.
    let chunk = section.map_or(chunk, <[u8]>::len);
    let mut owned = vec![0u8; if section.is_some() { 0 } else { chunk }];
    // The string that runs into the next chunk: its offset and, while it
    // is short enough to be one of the names, its bytes so far.
    let mut cur: Vec<u8> = Vec::with_capacity(longest + 1);
    let mut long = false;
    let mut start = 0u64;
    let mut off = 0u64;
    while off < l.str_len {
        let n = (l.str_len - off).min(chunk as u64) as usize;
        let buf = match section {
            Some(all) => all,
            None => {
                read_full(r, &mut owned[..n], l.strings + off, BtfError::BadHeader)?;
                &owned[..n]
            }
        };
        // Where the string that ends at each NUL began, in this chunk.
        let mut from = 0usize;
        let mut end_at = |p: usize, cur: &mut Vec<u8>, long: &mut bool, start: &mut u64| {
            let piece = &buf[from..p];
            let len = cur.len() + piece.len();
            if !*long && len <= longest {
                let hit = if cur.is_empty() {
                    m.find(piece)
                } else {
                    cur.extend_from_slice(piece);
                    m.find(cur)
                };
                if let (Some(k), Ok(s)) = (hit, u32::try_from(*start)) {
                    at.push((s, k));
                }
            }
            cur.clear();
            *long = false;
            from = p + 1;
            *start = off + from as u64;
        };
        // Strings are short (~18 bytes on average): find the NULs eight
        // bytes at a time.
        let words = n / 8;
        for w in 0..words {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[w * 8..w * 8 + 8]);
            let x = u64::from_le_bytes(b);
            let mut zero = !(((x & LOW7) + LOW7) | x | LOW7);
            while zero != 0 {
                let p = w * 8 + (zero.trailing_zeros() / 8) as usize;
                end_at(p, &mut cur, &mut long, &mut start);
                zero &= zero - 1;
            }
        }
        let tail = words * 8;
        for (p, _) in buf[tail..n].iter().enumerate().filter(|(_, c)| **c == 0) {
            end_at(tail + p, &mut cur, &mut long, &mut start);
        }
        // The rest runs into the next chunk.
        let rest = &buf[from.min(n)..n];
        if !long && cur.len() + rest.len() <= longest {
            cur.extend_from_slice(rest);
        } else {
            long = true;
        }
        off += n as u64;
    }
    Ok(at)
}

/// Positioned access to the type records, for looking through anonymous
/// members.
struct Types<'a, R: ReadAt + ?Sized> {
    r: &'a R,
    l: &'a Layout,
    starts: Vec<(u32, u32)>,
}

impl<R: ReadAt + ?Sized> Types<'_, R> {
    /// The header of type `id` (name_off, info, size/type), if it is a
    /// struct, union or modifier, and where its members start.
    fn rec(&self, id: u32) -> Result<Option<([u32; 3], u64)>, BtfError> {
        let Ok(i) = self.starts.binary_search_by_key(&id, |s| s.0) else {
            return Ok(None);
        };
        let off = self.l.types + u64::from(self.starts[i].1);
        let mut h = [0u8; 12];
        read_full(self.r, &mut h, off, BtfError::BadType(0))?;
        let v = [0, 4, 8].map(|k| u32_at(&h, k).unwrap_or(0));
        Ok(Some((v, off + 12)))
    }

    /// Follow modifiers to the type.
    fn skip_modifiers(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..16 {
            match self.rec(id)? {
                Some(([_, info, ty], _)) if is_modifier((info >> 24) & 0x1f) => id = ty,
                _ => break,
            }
        }
        Ok(id)
    }

    /// Record the wanted members among `members` (of a struct or union
    /// starting `base_bits` into the outer struct), the first found of
    /// each name, looking through anonymous members depth first.
    #[allow(clippy::too_many_arguments)]
    fn walk<'w>(
        &self,
        kind_flag: bool,
        members: &[[u32; 3]],
        base_bits: u32,
        want: &[&'w str],
        is: &dyn Fn(u32, &str) -> bool,
        out: &mut HashMap<&'w str, u32>,
        depth: u32,
    ) -> Result<(), BtfError> {
        for &[n, ty, bits] in members {
            let bit_off = base_bits + if kind_flag { bits & 0x00ff_ffff } else { bits };
            if n == 0 {
                if depth >= 8 {
                    continue;
                }
                let inner = self.skip_modifiers(ty)?;
                let Some(([_, info, _], at)) = self.rec(inner)? else {
                    continue;
                };
                let kind = (info >> 24) & 0x1f;
                if kind != KIND_STRUCT && kind != KIND_UNION {
                    continue;
                }
                let vlen = (info & 0xffff) as usize;
                let mut raw = vec![0u8; 12 * vlen];
                read_full(self.r, &mut raw, at, BtfError::BadType(0))?;
                let inner_members: Vec<[u32; 3]> = raw
                    .chunks_exact(12)
                    .map(|m| [0, 4, 8].map(|k| u32_at(m, k).unwrap_or(0)))
                    .collect();
                self.walk(
                    info >> 31 == 1,
                    &inner_members,
                    bit_off,
                    want,
                    is,
                    out,
                    depth + 1,
                )?;
            } else if let Some(w) = want.iter().find(|w| is(n, w)) {
                out.entry(*w).or_insert(bit_off);
            }
        }
        Ok(())
    }
}

/// [`lookup`] in the running kernel's BTF: in place where the kernel lets
/// it be mapped, streamed from the file otherwise.
pub fn lookup_vmlinux(want: &Wanted) -> Result<Found, BtfError> {
    const PATH: &str = "/sys/kernel/btf/vmlinux";
    let f = std::fs::File::open(PATH).map_err(|e| BtfError::Io(format!("{PATH}: {e}")))?;
    let mapped = super::sys::Mapped::new(&f);
    let found = match &mapped {
        Some(m) => lookup(m.as_bytes(), want),
        None => lookup(&f, want),
    };
    found.map_err(|e| match e {
        BtfError::Io(m) => BtfError::Io(format!("{PATH}: {m}")),
        e => e,
    })
}

/// The whole-file reader: all of the BTF in memory (~5.5 MB for vmlinux)
/// and an index of where each type starts, for callers that look up many
/// types. [`lookup`] streams instead; the owner iterator uses it.
/// Parsed BTF: the raw bytes and where each type starts.
pub struct Btf {
    data: Vec<u8>,
    types: usize,
    strings: usize,
    strings_len: usize,
    /// Byte offset (from `types`) of type id i+1.
    starts: Vec<u32>,
}

impl Btf {
    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != BTF_MAGIC {
            return Err(BtfError::BadHeader);
        }
        let h = |i| u32_at(&data, i).ok_or(BtfError::BadHeader);
        let hdr_len = h(4)? as usize;
        let (type_off, type_len) = (h(8)? as usize, h(12)? as usize);
        let (str_off, str_len) = (h(16)? as usize, h(20)? as usize);
        let types = hdr_len + type_off;
        let strings = hdr_len + str_off;
        if types + type_len > data.len() || strings + str_len > data.len() {
            return Err(BtfError::BadHeader);
        }
        let mut starts = Vec::with_capacity(type_len / 24);
        let mut off = 0usize;
        while off < type_len {
            starts.push(off as u32);
            let info = u32_at(&data, types + off + 4).ok_or(BtfError::BadType(0))?;
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            off += 12 + extra_len(kind, vlen)?;
        }
        if off != type_len {
            return Err(BtfError::BadType(0));
        }
        Ok(Btf {
            data,
            types,
            strings,
            strings_len: str_len,
            starts,
        })
    }

    fn name(&self, name_off: u32) -> &[u8] {
        let start = self.strings + name_off as usize;
        if name_off as usize >= self.strings_len {
            return b"";
        }
        let s = &self.data[start..self.strings + self.strings_len];
        &s[..s.iter().position(|&c| c == 0).unwrap_or(s.len())]
    }

    fn rec(&self, id: u32) -> Option<(usize, u32, u32, u32)> {
        let off = self.types + *self.starts.get((id as usize).checked_sub(1)?)? as usize;
        let name_off = u32_at(&self.data, off)?;
        let info = u32_at(&self.data, off + 4)?;
        Some((off, name_off, info, u32_at(&self.data, off + 8)?))
    }

    /// Id of the first type of `kind` named `name`.
    fn find(&self, kind: u32, name: &str) -> Option<u32> {
        (1..=self.starts.len() as u32).find(|&id| {
            self.rec(id).is_some_and(|(_, n, info, _)| {
                (info >> 24) & 0x1f == kind && self.name(n) == name.as_bytes()
            })
        })
    }

    /// Type id of the function `name` (a BPF attach target).
    pub fn func_id(&self, name: &str) -> Result<u32, BtfError> {
        self.find(KIND_FUNC, name)
            .ok_or_else(|| BtfError::Missing(format!("function {name}")))
    }

    /// Byte offsets of members of `struct name`, looking through anonymous
    /// struct and union members as C does.
    pub fn member_offsets(
        &self,
        name: &str,
        members: &[&str],
    ) -> Result<HashMap<String, u32>, BtfError> {
        let mut out = self.member_bit_offsets(name, members)?;
        for v in out.values_mut() {
            *v /= 8;
        }
        Ok(out)
    }

    /// Like [`Btf::member_offsets`], in bits: where a bitfield member
    /// starts.
    pub fn member_bit_offsets(
        &self,
        name: &str,
        members: &[&str],
    ) -> Result<HashMap<String, u32>, BtfError> {
        let id = self
            .find(KIND_STRUCT, name)
            .ok_or_else(|| BtfError::Missing(format!("struct {name}")))?;
        let mut out = HashMap::new();
        self.walk(id, 0, members, &mut out, 0);
        for m in members {
            if !out.contains_key(*m) {
                return Err(BtfError::Missing(format!("member {name}.{m}")));
            }
        }
        Ok(out)
    }

    fn walk(
        &self,
        id: u32,
        base_bits: u32,
        want: &[&str],
        out: &mut HashMap<String, u32>,
        depth: u32,
    ) {
        let Some((off, _, info, _)) = self.rec(id) else {
            return;
        };
        let kind = (info >> 24) & 0x1f;
        if depth > 8 || (kind != KIND_STRUCT && kind != KIND_UNION) {
            return;
        }
        let kind_flag = info >> 31 == 1;
        for i in 0..(info & 0xffff) as usize {
            let m = off + 12 + 12 * i;
            let (Some(n), Some(ty), Some(bits)) = (
                u32_at(&self.data, m),
                u32_at(&self.data, m + 4),
                u32_at(&self.data, m + 8),
            ) else {
                return;
            };
            let bit_off = base_bits + if kind_flag { bits & 0x00ff_ffff } else { bits };
            let name = self.name(n);
            if name.is_empty() {
                self.walk(self.skip_modifiers(ty), bit_off, want, out, depth + 1);
            } else if let Some(w) = want.iter().find(|w| w.as_bytes() == name) {
                out.entry((*w).to_string()).or_insert(bit_off);
            }
        }
    }

    /// Follow typedef / volatile / const / restrict / type tags to the type.
    fn skip_modifiers(&self, mut id: u32) -> u32 {
        for _ in 0..16 {
            match self.rec(id) {
                Some((_, _, info, ty)) if matches!((info >> 24) & 0x1f, 8..=11 | 18) => id = ty,
                _ => break,
            }
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the owner iterator asks for, and a few more (members inside
    /// anonymous unions and structs, bitfield neighbours).
    const WANT: Wanted = Wanted {
        structs: &[
            ("bpf_iter_meta", &["seq", "session_id", "seq_num"]),
            ("bpf_iter__task_file", &["meta", "task", "fd", "file"]),
            (
                "task_struct",
                &["tgid", "pid", "files", "comm", "real_cred", "mm"],
            ),
            ("cred", &["euid", "uid"]),
            ("file", &["f_inode", "private_data", "f_op"]),
            ("inode", &["i_mode", "i_ino", "i_sb"]),
            ("super_block", &["s_magic"]),
            ("socket", &["sk", "state", "type"]),
            ("sock", &["__sk_common", "sk_protocol", "sk_type"]),
            (
                "sock_common",
                &["skc_num", "skc_dport", "skc_family", "skc_state"],
            ),
        ],
        funcs: &["bpf_iter_task_file", "bpf_sock_from_file"],
    };

    fn vmlinux() -> Vec<u8> {
        std::fs::read("/sys/kernel/btf/vmlinux").unwrap_or_else(|e| {
            panic!("this machine has BTF at /sys/kernel/btf/vmlinux (DESIGN.md): {e}")
        })
    }

    #[test]
    fn kernel_btf_offsets() {
        let f = lookup_vmlinux(&WANT).unwrap();
        // __bpf_md_ptr(struct seq_file *, seq) is an anonymous union at 0.
        assert_eq!(f.offset("bpf_iter_meta", "seq"), Ok(0));
        assert_eq!(f.offset("bpf_iter_meta", "session_id"), Ok(8));
        let o = |m| f.offset("bpf_iter__task_file", m).unwrap();
        assert_eq!((o("meta"), o("task"), o("fd"), o("file")), (0, 8, 16, 24));
        assert!(f.func_id("bpf_iter_task_file").unwrap() > 0);
        assert_eq!(
            f.offset("task_struct", "no_such_member"),
            Err(BtfError::Missing(
                "member task_struct.no_such_member".into()
            ))
        );
        let missing = Wanted {
            structs: &[("task_struct", &["pid", "no_such_member"])],
            funcs: &[],
        };
        assert_eq!(
            lookup_vmlinux(&missing),
            Err(BtfError::Missing(
                "member task_struct.no_such_member".into()
            ))
        );
        let missing = Wanted {
            structs: &[],
            funcs: &["no_such_function_here"],
        };
        assert_eq!(
            lookup_vmlinux(&missing),
            Err(BtfError::Missing("function no_such_function_here".into()))
        );
    }

    /// Bytes read as a file is, a chunk at a time (not in place).
    struct Chunked<'a>(&'a [u8]);

    impl ReadAt for Chunked<'_> {
        fn read_at(&self, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
            self.0.read_at(buf, off)
        }
        fn size(&self) -> std::io::Result<u64> {
            self.0.size()
        }
    }

    #[test]
    fn streaming_agrees_with_the_whole_file_reader() {
        let data = vmlinux();
        let old = Btf::parse(data.clone()).unwrap();
        // 64 KiB chunks, and chunks so small that names, records and
        // member lists straddle them all the time.
        for chunk in [CHUNK, 4096, 13] {
            let new = lookup_in_chunks(&Chunked(&data[..]), &WANT, chunk).unwrap();
            for (s, ms) in WANT.structs {
                let want = old.member_offsets(s, ms).unwrap();
                let bits = old.member_bit_offsets(s, ms).unwrap();
                for m in *ms {
                    assert_eq!(new.offset(s, m), Ok(want[*m]), "{s}.{m}, chunk {chunk}");
                    assert_eq!(new.bit_offset(s, m), Ok(bits[*m]), "{s}.{m}, chunk {chunk}");
                }
            }
            for f in WANT.funcs {
                assert_eq!(new.func_id(f), old.func_id(f), "{f}, chunk {chunk}");
            }
        }
        // The file as read through the kernel agrees with the bytes: as
        // lookup_vmlinux reads it (mapped where the kernel allows it), as
        // a mapping and as a file read in chunks.
        let bytes = lookup(&data[..], &WANT).unwrap();
        assert_eq!(lookup_vmlinux(&WANT).unwrap(), bytes);
        let f = std::fs::File::open("/sys/kernel/btf/vmlinux").unwrap();
        assert_eq!(lookup(&f, &WANT).unwrap(), bytes);
        if let Some(m) = super::super::sys::Mapped::new(&f) {
            assert_eq!(m.as_bytes(), &data[..]);
            assert_eq!(lookup(m.as_bytes(), &WANT).unwrap(), bytes);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let want = Wanted {
            structs: &[("task_struct", &["pid"])],
            funcs: &[],
        };
        assert_eq!(lookup(&[0u8; 10][..], &want), Err(BtfError::BadHeader));
        let mut h = [0u8; 24];
        h[0..2].copy_from_slice(&BTF_MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&24u32.to_le_bytes());
        h[12..16].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(lookup(&h[..], &want), Err(BtfError::BadHeader));
        // Every cut of real BTF fails cleanly (a truncated header or type
        // section, or a missing struct), never panics.
        let data = vmlinux();
        let t = lookup(&data[..24], &want);
        assert!(matches!(t, Err(BtfError::BadHeader)), "{t:?}");
        for cut in [0, 1, 23, 25, 1000, data.len() / 2, data.len() - 1] {
            assert!(lookup(&data[..cut], &want).is_err(), "cut at {cut}");
            let chunked = Chunked(&data[..cut]);
            assert!(lookup(&chunked, &want).is_err(), "cut at {cut}, in chunks");
        }
        // An unknown kind in the first type record.
        let mut bad = data.clone();
        let types = 24 + u32_at(&data, 8).unwrap() as usize;
        bad[types + 7] = 0x1f; // kind 31
        assert_eq!(lookup(&bad[..], &want), Err(BtfError::BadType(31)));
        assert_eq!(
            lookup(&Chunked(&bad[..]), &want),
            Err(BtfError::BadType(31))
        );
    }
}
