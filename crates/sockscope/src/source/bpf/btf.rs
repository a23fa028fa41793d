//! A minimal reader of kernel BTF (/sys/kernel/btf/vmlinux): enough to find
//! a struct member's byte offset and a function's type id, without building
//! the whole type graph. One pass indexes where each type record starts
//! (4 bytes per type); lookups then scan names in place.
//!
//! Format: include/uapi/linux/btf.h.

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

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("not BTF data (bad magic or header)")]
    BadHeader,
    #[error("BTF type section is truncated or has an unknown kind {0}")]
    BadType(u32),
    #[error("BTF has no {0}")]
    Missing(String),
}

/// Parsed BTF: the raw bytes and where each type starts.
pub struct Btf {
    data: Vec<u8>,
    types: usize,
    strings: usize,
    strings_len: usize,
    /// Byte offset (from `types`) of type id i+1.
    starts: Vec<u32>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
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
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => 12 * vlen,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                2 | 7..=11 | KIND_FUNC | 16 | 18 => 0,
                k => return Err(BtfError::BadType(k)),
            };
            off += 12 + extra;
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

    #[test]
    fn kernel_btf_offsets() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            panic!("this machine has BTF at /sys/kernel/btf/vmlinux (DESIGN.md); it is missing");
        };
        let btf = Btf::parse(data).unwrap();
        let m = btf
            .member_offsets("bpf_iter_meta", &["seq", "session_id", "seq_num"])
            .unwrap();
        // __bpf_md_ptr(struct seq_file *, seq) is an anonymous union at 0.
        assert_eq!(m["seq"], 0);
        assert_eq!(m["session_id"], 8);
        let f = btf
            .member_offsets("bpf_iter__task_file", &["meta", "task", "fd", "file"])
            .unwrap();
        assert_eq!((f["meta"], f["task"], f["fd"], f["file"]), (0, 8, 16, 24));
        assert!(btf.func_id("bpf_iter_task_file").unwrap() > 0);
        assert!(matches!(
            btf.member_offsets("task_struct", &["no_such_member"]),
            Err(BtfError::Missing(_))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(Btf::parse(vec![0; 10]).err(), Some(BtfError::BadHeader));
        let mut h = vec![0u8; 24];
        h[0..2].copy_from_slice(&BTF_MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&24u32.to_le_bytes());
        h[12..16].copy_from_slice(&100u32.to_le_bytes());
        assert_eq!(Btf::parse(h).err(), Some(BtfError::BadHeader));
    }
}
