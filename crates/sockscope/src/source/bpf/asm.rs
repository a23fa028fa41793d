//! A small eBPF assembler: instruction constructors and a program builder
//! whose jumps name labels, resolved when the program is finished, so a
//! program can grow without anyone recounting jump offsets by hand.
//!
//! Encoding: include/uapi/linux/bpf.h (`struct bpf_insn`: opcode, dst:4 |
//! src:4, off: s16, imm: s32) and bpf_common.h (classes, sizes, modes).

/// One instruction: opcode, registers (dst in the low nibble), offset,
/// immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn(pub u8, pub u8, pub i16, pub i32);

pub const R0: u8 = 0;
pub const R1: u8 = 1;
pub const R2: u8 = 2;
pub const R3: u8 = 3;
pub const R6: u8 = 6;
pub const R7: u8 = 7;
pub const R8: u8 = 8;
pub const R9: u8 = 9;
pub const R10: u8 = 10;

// Opcodes: class | size/op | mode/source.
const LDX_MEM: u8 = 0x61; // BPF_LDX | BPF_MEM, size added below
const SIZE_W: u8 = 0x00;
const SIZE_H: u8 = 0x08;
const SIZE_DW: u8 = 0x18;
const STX_MEM_W: u8 = 0x63;
const STX_MEM_DW: u8 = 0x7b;
const ALU64_MOV_X: u8 = 0xbf;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_ADD_K: u8 = 0x07;
const ALU64_AND_K: u8 = 0x57;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_JA: u8 = 0x05;
const JMP_CALL: u8 = 0x85;
const JMP_EXIT: u8 = 0x95;

fn ldx(size: u8, dst: u8, src: u8, off: u32) -> Insn {
    Insn(LDX_MEM | size, dst | (src << 4), off as i16, 0)
}
/// `dst = *(u64 *)(src + off)`
pub fn ldx_dw(dst: u8, src: u8, off: u32) -> Insn {
    ldx(SIZE_DW, dst, src, off)
}
/// `dst = *(u32 *)(src + off)`
pub fn ldx_w(dst: u8, src: u8, off: u32) -> Insn {
    ldx(SIZE_W, dst, src, off)
}
/// `dst = *(u16 *)(src + off)`
pub fn ldx_h(dst: u8, src: u8, off: u32) -> Insn {
    ldx(SIZE_H, dst, src, off)
}
/// `*(u32 *)(dst + off) = src`
pub fn stx_w(dst: u8, off: i16, src: u8) -> Insn {
    Insn(STX_MEM_W, dst | (src << 4), off, 0)
}
/// `*(u64 *)(dst + off) = src`
pub fn stx_dw(dst: u8, off: i16, src: u8) -> Insn {
    Insn(STX_MEM_DW, dst | (src << 4), off, 0)
}
/// `dst = src`
pub fn mov_reg(dst: u8, src: u8) -> Insn {
    Insn(ALU64_MOV_X, dst | (src << 4), 0, 0)
}
/// `dst = imm`
pub fn mov_imm(dst: u8, imm: i32) -> Insn {
    Insn(ALU64_MOV_K, dst, 0, imm)
}
/// `dst += imm`
pub fn add_imm(dst: u8, imm: i32) -> Insn {
    Insn(ALU64_ADD_K, dst, 0, imm)
}
/// `dst &= imm`
pub fn and_imm(dst: u8, imm: i32) -> Insn {
    Insn(ALU64_AND_K, dst, 0, imm)
}
/// Call helper number `helper`.
pub fn call(helper: i32) -> Insn {
    Insn(JMP_CALL, 0, 0, helper)
}
/// Return r0.
pub fn exit() -> Insn {
    Insn(JMP_EXIT, 0, 0, 0)
}

/// Any instruction, by its fields.
pub const fn raw(op: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn(op, dst | (src << 4), off, imm)
}
pub const R4: u8 = 4;
pub const R5: u8 = 5;
/// `dst = *(u8 *)(src + off)`
pub fn ldx_b(dst: u8, src: u8, off: u32) -> Insn {
    raw(0x71, dst, src, off as i16, 0)
}
/// `dst += src`
pub fn add_reg(dst: u8, src: u8) -> Insn {
    raw(0x0f, dst, src, 0, 0)
}
/// `dst <<= imm`
pub fn lsh_imm(dst: u8, imm: i32) -> Insn {
    raw(0x67, dst, 0, 0, imm)
}
/// `dst >>= imm` (logical)
pub fn rsh_imm(dst: u8, imm: i32) -> Insn {
    raw(0x77, dst, 0, 0, imm)
}
/// `dst >>= src` (logical)
pub fn rsh_reg(dst: u8, src: u8) -> Insn {
    raw(0x7f, dst, src, 0, 0)
}
/// `*(u64 *)(dst + off) = imm`
pub fn st_dw(dst: u8, off: i16, imm: i32) -> Insn {
    raw(0x7a, dst, 0, off, imm)
}
/// `*(u32 *)(dst + off) = imm`
pub fn st_w(dst: u8, off: i16, imm: i32) -> Insn {
    raw(0x62, dst, 0, off, imm)
}
/// Call the kernel function (kfunc) whose vmlinux BTF id is `btf_id`.
pub fn call_kfunc(btf_id: u32) -> Insn {
    raw(JMP_CALL, 0, 2, 0, btf_id as i32) // src BPF_PSEUDO_KFUNC_CALL
}
/// `dst = map` (the map with fd `fd`): two instruction slots.
pub fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
    [raw(0x18, dst, 1, 0, fd), raw(0, 0, 0, 0, 0)] // src BPF_PSEUDO_MAP_FD
}

/// A place in the program a jump can go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Label(usize);

/// A program under construction.
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    /// Where each label was bound (instruction index).
    bound: Vec<Option<usize>>,
    /// Jumps to patch: (instruction index, label).
    jumps: Vec<(usize, Label)>,
}

/// A program that cannot be finished.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("label {0} is used but never bound")]
    Unbound(usize),
    #[error("jump at instruction {0} is out of range")]
    TooFar(usize),
}

impl Asm {
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A new label, to be bound later with [`Asm::bind`].
    pub fn label(&mut self) -> Label {
        self.bound.push(None);
        Label(self.bound.len() - 1)
    }

    /// The next instruction is where `l` points.
    pub fn bind(&mut self, l: Label) {
        self.bound[l.0] = Some(self.insns.len());
    }

    /// Append instructions.
    pub fn push(&mut self, insns: &[Insn]) {
        self.insns.extend_from_slice(insns);
    }

    fn jump(&mut self, op: u8, dst: u8, imm: i32, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(Insn(op, dst, 0, imm));
    }

    /// `if dst == imm goto to`
    pub fn jeq_imm(&mut self, dst: u8, imm: i32, to: Label) {
        self.jump(JMP_JEQ_K, dst, imm, to);
    }

    /// `if dst != imm goto to`
    pub fn jne_imm(&mut self, dst: u8, imm: i32, to: Label) {
        self.jump(JMP_JNE_K, dst, imm, to);
    }

    /// `if dst OP src goto to`, OP a BPF_JMP opcode with BPF_X (jge: 0x3d,
    /// jgt: 0x2d, jlt: 0xad, jeq: 0x1d, jne: 0x5d).
    pub fn jmp_reg(&mut self, op: u8, dst: u8, src: u8, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(raw(op, dst, src, 0, 0));
    }

    /// `if dst OP imm goto to`, OP a BPF_JMP opcode with BPF_K (jge: 0x35,
    /// jgt: 0x25, jset: 0x45).
    pub fn jmp_imm(&mut self, op: u8, dst: u8, imm: i32, to: Label) {
        self.jump(op, dst, imm, to);
    }

    /// `goto to`
    pub fn ja(&mut self, to: Label) {
        self.jump(JMP_JA, 0, 0, to);
    }

    /// Resolve every jump: its offset counts from the instruction after it.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        for &(at, Label(l)) in &self.jumps {
            let target = self.bound[l].ok_or(AsmError::Unbound(l))?;
            let off =
                i16::try_from(target as i64 - at as i64 - 1).map_err(|_| AsmError::TooFar(at))?;
            self.insns[at].2 = off;
        }
        Ok(self.insns)
    }
}

/// The program as the kernel reads it (little-endian `struct bpf_insn`s).
pub fn encode(p: &[Insn]) -> Vec<u8> {
    let mut b = Vec::with_capacity(p.len() * 8);
    for i in p {
        b.push(i.0);
        b.push(i.1);
        b.extend_from_slice(&i.2.to_le_bytes());
        b.extend_from_slice(&i.3.to_le_bytes());
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_resolve_forward_and_backward() {
        let mut a = Asm::new();
        let top = a.label();
        let out = a.label();
        a.bind(top);
        a.push(&[mov_imm(R0, 1)]); // 0
        a.jeq_imm(R0, 0, out); // 1 -> 4
        a.push(&[add_imm(R0, 1)]); // 2
        a.jne_imm(R0, 5, top); // 3 -> 0
        a.bind(out);
        a.push(&[exit()]); // 4
        let p = a.finish().unwrap();
        assert_eq!(p[1], Insn(0x15, R0, 2, 0));
        assert_eq!(p[3], Insn(0x55, R0, -4, 5));
        assert_eq!(encode(&p).len(), 5 * 8);
        assert_eq!(&encode(&p)[8..16], &[0x15, 0, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn an_unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.label();
        a.jeq_imm(R1, 0, l);
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
    }

    #[test]
    fn registers_and_offsets_encode() {
        assert_eq!(ldx_dw(R7, R6, 8), Insn(0x79, 0x67, 8, 0));
        assert_eq!(ldx_w(R1, R7, 4), Insn(0x61, 0x71, 4, 0));
        assert_eq!(ldx_h(R1, R9, 2), Insn(0x69, 0x91, 2, 0));
        assert_eq!(stx_dw(R10, -8, R1), Insn(0x7b, 0x1a, -8, 0));
    }
}
