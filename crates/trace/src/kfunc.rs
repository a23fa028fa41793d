//! Linking kfunc calls in the BPF object before aya loads it.
//!
//! The programs call one kfunc, `bpf_rdonly_cast` (Linux 6.2+), to read
//! kernel structures found through plain addresses with direct loads
//! instead of a `bpf_probe_read_kernel` call per field. aya 0.14 does not
//! link kfuncs, and a kfunc declared the libbpf way brings an "extern"
//! function into the object's BTF, which the kernel refuses. So the C
//! source calls it as a helper with an id no helper has
//! ([`CALL_MARKER`], `KFUNC_RDONLY_CAST` in bpf/helpers.h), and the loader
//! rewrites each such call in a copy of the object: into a kfunc call
//! (source register BPF_PSEUDO_KFUNC_CALL, immediate = the function's id
//! in the kernel's BTF) or, on a kernel without it, into `r0 = r1` (the
//! cast's result is its argument) with the programs told
//! (`cfg_kfunc_cast` = 0) to take their probe-read path, so the verifier
//! never walks the code after those moves.

/// The kfunc the programs call.
pub const RDONLY_CAST: &str = "bpf_rdonly_cast";

/// The helper id the C source calls the kfunc by.
pub const CALL_MARKER: i32 = 0x0535_c0be;

const BPF_PSEUDO_KFUNC_CALL: u8 = 2;
/// BPF_JMP | BPF_CALL
const OP_CALL: u8 = 0x85;
/// BPF_ALU64 | BPF_MOV | BPF_X
const OP_MOV64_REG: u8 = 0xbf;
/// Sections holding instructions.
const SHF_EXECINSTR: u64 = 4;

/// What a call to the kfunc becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// A kfunc call to this BTF id of vmlinux.
    Kfunc(u32),
    /// `r0 = r1`: the kernel lacks the kfunc.
    Move,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KfuncError {
    #[error("the BPF object is not a 64-bit little-endian ELF file")]
    NotElf,
    #[error("the BPF object is truncated or malformed ({0})")]
    Malformed(&'static str),
}

/// `N` bytes at offset `o`, or an error (never a panic or an overflow).
fn bytes_at<const N: usize>(b: &[u8], o: usize) -> Result<[u8; N], KfuncError> {
    o.checked_add(N)
        .and_then(|end| b.get(o..end))
        .and_then(|s| s.try_into().ok())
        .ok_or(KfuncError::Malformed("short read"))
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, KfuncError> {
    bytes_at(b, o).map(u16::from_le_bytes)
}

fn u32_at(b: &[u8], o: usize) -> Result<u32, KfuncError> {
    bytes_at(b, o).map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], o: usize) -> Result<u64, KfuncError> {
    bytes_at(b, o).map(u64::from_le_bytes)
}

fn usize_of(v: u64) -> Result<usize, KfuncError> {
    usize::try_from(v).map_err(|_| KfuncError::Malformed("offset out of range"))
}

/// Where a section's bytes are, and whether it holds instructions.
struct Section {
    code: bool,
    offset: usize,
    size: usize,
}

fn sections(elf: &[u8]) -> Result<Vec<Section>, KfuncError> {
    if elf.get(0..4) != Some(b"\x7fELF".as_slice())
        || elf.get(4) != Some(&2)
        || elf.get(5) != Some(&1)
    {
        return Err(KfuncError::NotElf);
    }
    let shoff = usize_of(u64_at(elf, 0x28)?)?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    if shentsize < 64 {
        return Err(KfuncError::Malformed("section header size"));
    }
    (0..shnum)
        .map(|i| {
            // the whole 64-byte header must be in the file
            let h = i
                .checked_mul(shentsize)
                .and_then(|o| o.checked_add(shoff))
                .filter(|h| h.checked_add(64).is_some_and(|end| end <= elf.len()))
                .ok_or(KfuncError::Malformed("section header offset"))?;
            let s = Section {
                code: u64_at(elf, h + 8)? & SHF_EXECINSTR != 0,
                offset: usize_of(u64_at(elf, h + 24)?)?,
                size: usize_of(u64_at(elf, h + 32)?)?,
            };
            if s.code
                && s.offset
                    .checked_add(s.size)
                    .is_none_or(|end| end > elf.len())
            {
                return Err(KfuncError::Malformed("section past the end of the file"));
            }
            Ok(s)
        })
        .collect()
}

/// The offsets of the calls to the marker in the object's code.
fn marker_calls(elf: &[u8]) -> Result<Vec<usize>, KfuncError> {
    let mut at = Vec::new();
    for s in sections(elf)?.iter().filter(|s| s.code) {
        // A 16-byte ld_imm64's second half has opcode 0, so stepping by
        // 8 bytes never mistakes it for a call.
        for i in (s.offset..s.offset + s.size / 8 * 8).step_by(8) {
            if elf[i] == OP_CALL && elf[i + 1] == 0 && u32_at(elf, i + 4)? as i32 == CALL_MARKER {
                at.push(i);
            }
        }
    }
    Ok(at)
}

/// Rewrite, in place, every call to the marker. Returns how many.
pub fn link(elf: &mut [u8], how: Link) -> Result<usize, KfuncError> {
    let calls = marker_calls(elf)?;
    for &i in &calls {
        match how {
            Link::Kfunc(id) => {
                elf[i + 1] = BPF_PSEUDO_KFUNC_CALL << 4;
                elf[i + 2..i + 4].fill(0);
                elf[i + 4..i + 8].copy_from_slice(&id.to_le_bytes());
            }
            Link::Move => {
                elf[i] = OP_MOV64_REG;
                elf[i + 1] = 1 << 4; // dst r0, src r1
                elf[i + 2..i + 8].fill(0);
            }
        }
    }
    Ok(calls.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECTS: [&[u8]; 2] = [
        include_bytes!("../bpf/trace-x86_64.bpf.o"),
        include_bytes!("../bpf/trace-aarch64.bpf.o"),
    ];

    #[test]
    fn every_call_becomes_a_kfunc_call() {
        for obj in OBJECTS {
            let mut elf = obj.to_vec();
            let at = marker_calls(&elf).unwrap();
            assert!(!at.is_empty());
            let n = link(&mut elf, Link::Kfunc(65500)).unwrap();
            assert_eq!(n, at.len());
            for &i in &at {
                assert_eq!((elf[i], elf[i + 1]), (OP_CALL, 0x20));
                assert_eq!(u32_at(&elf, i + 4).unwrap(), 65500);
            }
            // Nothing else changed, and nothing is left to link.
            let changed = obj.iter().zip(&elf).filter(|(a, b)| a != b).count();
            assert!(changed <= 6 * n, "{changed} bytes for {n} calls");
            assert_eq!(link(&mut elf, Link::Kfunc(1)), Ok(0));
        }
    }

    #[test]
    fn without_the_kfunc_calls_become_moves() {
        let mut elf = OBJECTS[0].to_vec();
        let at = marker_calls(&elf).unwrap();
        assert_eq!(link(&mut elf, Link::Move), Ok(at.len()));
        for &i in &at {
            assert_eq!(&elf[i..i + 8], &[OP_MOV64_REG, 0x10, 0, 0, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn bad_objects_are_errors_not_panics() {
        assert_eq!(link(&mut [0u8; 3], Link::Move), Err(KfuncError::NotElf));
        // section headers "at" the end of the address space
        let mut elf = OBJECTS[0].to_vec();
        elf[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            link(&mut elf, Link::Move),
            Err(KfuncError::Malformed(_))
        ));
        let mut elf = OBJECTS[0].to_vec();
        elf.truncate(200);
        assert!(matches!(
            link(&mut elf, Link::Move),
            Err(KfuncError::Malformed(_))
        ));
    }
}
