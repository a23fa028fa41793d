//! Owners through each process's fd array: a task iterator (`iter/task`)
//! whose program walks the task's open-fd bitmap and fd array itself, so
//! the kernel neither takes nor drops a reference on any file and the
//! program runs once per task instead of once per fd. For each open fd it
//! reads the file's inode and, for a sockfs socket, writes (fd, inode)
//! (8 bytes); after the task's fds, a trailer names the task. It gives
//! the same records as the `task_file` walk of [`super::owners_bpf`]
//! (every socket fd of every process), at a fraction of its cost: no
//! refcount, no per-fd call, two cache lines read per socket fd.
//!
//! In C it would read (kfuncs: `bpf_iter_num_*`, Linux 6.4+, and
//! `bpf_rdonly_cast`, which the verifier turns into a move):
//!
//! ```c
//! SEC("iter/task")
//! int fds(struct bpf_iter__task *ctx) {
//!     struct task_struct *t = ctx->task;
//!     struct files_struct *files = t ? t->files : NULL;
//!     if (!files || (t->tgid != t->pid && files == t->group_leader->files)) return 0;
//!     struct fdtable *fdt = files->fdt;
//!     u32 words = (fdt->max_fds + 63) / 64, start = 0, end, next = 0;
//!     struct resume *r = bpf_map_lookup_elem(&resume, &zero);
//!     if (r && r->tid) {
//!         if (r->tid != t->pid) return 0;
//!         start = r->word;
//!     }
//!     end = start + WORDS_PER_RUN < words ? (next = start + WORDS_PER_RUN) : words;
//!     bpf_for(w, start, end) {
//!         u64 bits = fdt->open_fds[w];
//!         bpf_for(j, 0, 64) {
//!             if (!(bits >> j & 1)) continue;
//!             struct file *f = fdt->fd[w * 64 + j];
//!             struct inode *i = f ? f->f_inode : NULL;
//!             if (!i || (i->i_mode & S_IFMT) != S_IFSOCK || i->i_sb->s_magic != SOCKFS_MAGIC) continue;
//!             struct { u32 fd, ino; } rec = { w * 64 + j, i->i_ino };
//!             bpf_seq_write(ctx->meta->seq, &rec, 8);
//!         }
//!     }
//!     struct trailer tr = { ~0u, t->tgid, t->pid, euid, (u64)files, comm, next };
//!     bpf_seq_write(ctx->meta->seq, &tr, sizeof tr);
//!     return 0;
//! }
//! ```
//!
//! One task's output must fit the iterator's 32 KiB buffer, so a run
//! walks at most [`WORDS_PER_RUN`] words of the bitmap (4,032 fds) and its
//! trailer says where it stopped; the rest of that task is walked by
//! runs of an iterator given the task's process (Linux 6.1+), started
//! where the last stopped (the resume map, which also names the thread:
//! the program skips the process's others). Not an iterator given the
//! thread: on kernels without the fix "bpf: Fix iter/task tid filtering"
//! (October 2024) that filter finds only a process's main thread
//! (get_pid_task with PIDTYPE_TGID), so the rest of a table that
//! another thread holds (after unshare(CLONE_FILES), or with the main
//! thread gone) would silently be missed. Sockfs inode numbers are 32 bits
//! (`get_next_ino`), as netlink reports them.
//!
//! The fd array is read without the table's lock, under RCU (the program
//! runs inside the iterator's RCU read section): a table replaced while
//! it is read (grown) is still valid memory; a file closed meanwhile may
//! be seen or not, as with any snapshot. The task's `files_struct`
//! itself is freed at once when its last user drops it (an exiting task,
//! unshare, execve), not after a grace period: every load here is a
//! probe, so such memory cannot crash the walk, and a task that began to
//! exit, or whose table was swapped, while it was walked has its trailer
//! marked stale and its fds dropped (what was read may be another
//! table's by then).

use super::bpf::asm::*;
use super::bpf::btf::{self, Found, Wanted};
use super::bpf::sys::{
    BPF_ITER_CREATE, BPF_LINK_CREATE, BPF_PROG_LOAD, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, bpf,
    bpf_cmd, put32, put64,
};
use super::owners_bpf::{BpfOwnerError, Record};
use crate::model::OwnerScan;
use rustix::fd::{AsRawFd, OwnedFd};
use std::io::Read;

/// Set to 0 to not use this walk (the `task_file` walk instead): for
/// tests and benchmarks of both.
pub const ENV: &str = "SOCKSCOPE_OWNERS_FDT";

/// Is this walk to be tried (see [`ENV`])?
pub fn enabled() -> bool {
    std::env::var_os(ENV).is_none_or(|v| v != "0")
}

/// Bitmap words (64 fds each) one run of the program walks for a task:
/// 63 × 64 fds × 8 bytes and the trailer fit the iterator's 32 KiB.
pub const WORDS_PER_RUN: u32 = 63;

/// Size of the trailer record.
const TRAILER: usize = 48;

/// First word of a trailer (no fd is this large).
const TRAILER_TAG: u32 = u32::MAX;

#[derive(Clone, Debug)]
struct Offsets {
    meta_seq: u32,
    task_tgid: u32,
    task_pid: u32,
    task_files: u32,
    task_comm: u32,
    task_real_cred: u32,
    task_group_leader: u32,
    task_flags: u32,
    cred_uid: u32,
    files_fdt: u32,
    fdt_max_fds: u32,
    fdt_fd: u32,
    fdt_open_fds: u32,
    file_inode: u32,
    inode_mode: u32,
    inode_ino: u32,
    inode_sb: u32,
    sb_magic: u32,
}

/// Type ids the program needs: the kfuncs, and the structs it casts to.
#[derive(Clone, Debug)]
struct Ids {
    attach: u32,
    num_new: u32,
    num_next: u32,
    num_destroy: u32,
    rdonly_cast: u32,
    /// A struct whose first member is an unsigned long: read through to
    /// load one word at an address.
    word: u32,
    file: u32,
    task: u32,
}

const WANT: Wanted = Wanted {
    structs: &[
        ("bpf_iter_meta", &["seq"]),
        (
            "task_struct",
            &[
                "tgid",
                "pid",
                "files",
                "comm",
                "real_cred",
                "group_leader",
                "flags",
            ],
        ),
        ("cred", &["euid"]),
        ("files_struct", &["fdt"]),
        ("fdtable", &["max_fds", "fd", "open_fds"]),
        ("file", &["f_inode"]),
        ("inode", &["i_mode", "i_ino", "i_sb"]),
        ("super_block", &["s_magic"]),
        ("rb_node", &["__rb_parent_color"]),
    ],
    funcs: &[
        "bpf_iter_task",
        "bpf_iter_num_new",
        "bpf_iter_num_next",
        "bpf_iter_num_destroy",
        "bpf_rdonly_cast",
    ],
};

#[derive(Clone, Debug)]
struct Kernel {
    o: Offsets,
    ids: Ids,
}

fn kernel_from(f: &Found) -> Result<Kernel, btf::BtfError> {
    Ok(Kernel {
        o: Offsets {
            meta_seq: f.offset("bpf_iter_meta", "seq")?,
            task_tgid: f.offset("task_struct", "tgid")?,
            task_pid: f.offset("task_struct", "pid")?,
            task_files: f.offset("task_struct", "files")?,
            task_comm: f.offset("task_struct", "comm")?,
            task_real_cred: f.offset("task_struct", "real_cred")?,
            task_group_leader: f.offset("task_struct", "group_leader")?,
            task_flags: f.offset("task_struct", "flags")?,
            cred_uid: f.offset("cred", "euid")?,
            files_fdt: f.offset("files_struct", "fdt")?,
            fdt_max_fds: f.offset("fdtable", "max_fds")?,
            fdt_fd: f.offset("fdtable", "fd")?,
            fdt_open_fds: f.offset("fdtable", "open_fds")?,
            file_inode: f.offset("file", "f_inode")?,
            inode_mode: f.offset("inode", "i_mode")?,
            inode_ino: f.offset("inode", "i_ino")?,
            inode_sb: f.offset("inode", "i_sb")?,
            sb_magic: f.offset("super_block", "s_magic")?,
        },
        ids: Ids {
            attach: f.func_id("bpf_iter_task")?,
            num_new: f.func_id("bpf_iter_num_new")?,
            num_next: f.func_id("bpf_iter_num_next")?,
            num_destroy: f.func_id("bpf_iter_num_destroy")?,
            rdonly_cast: f.func_id("bpf_rdonly_cast")?,
            word: {
                // The cast reads the word at offset 0.
                if f.offset("rb_node", "__rb_parent_color")? != 0 {
                    return Err(btf::BtfError::Missing(
                        "rb_node.__rb_parent_color at offset 0".into(),
                    ));
                }
                f.struct_id("rb_node")?
            },
            file: f.struct_id("file")?,
            task: f.struct_id("task_struct")?,
        },
    })
}

static KERNEL: std::sync::OnceLock<Result<Kernel, BpfOwnerError>> = std::sync::OnceLock::new();

fn kernel() -> Result<&'static Kernel, BpfOwnerError> {
    KERNEL
        .get_or_init(|| {
            let e = |e: btf::BtfError| BpfOwnerError::Btf(e.to_string());
            kernel_from(&btf::lookup_vmlinux(&WANT).map_err(e)?).map_err(e)
        })
        .as_ref()
        .map_err(Clone::clone)
}

// Stack layout (offsets from r10).
const S_FD_ARRAY: i16 = -8;
const S_OPEN_FDS: i16 = -16;
const S_NEXT: i16 = -24;
const S_OUTER: i16 = -32;
const S_INNER: i16 = -40;
const S_REC: i16 = -48;
const S_KEY: i16 = -56;
const S_SEQ: i16 = -64;
const S_TRAILER: i16 = -112;
const S_FILES: i16 = -120;

/// A stack offset as a load's offset field.
fn stack(off: i16) -> u32 {
    off as u16 as u32
}

const JEQ_X: u8 = 0x1d;
const JNE_X: u8 = 0x5d;
const JGE_X: u8 = 0x3d;

fn program(k: &Kernel, resume_map: i32) -> Vec<Insn> {
    const CTX_META: u32 = 0;
    const CTX_TASK: u32 = 8;
    const S_IFMT: i32 = 0o170000;
    const S_IFSOCK: i32 = 0o140000;
    const SOCKFS_MAGIC: i32 = 0x534F_434B;
    const PF_EXITING: i32 = 0x4;
    const MAP_LOOKUP: i32 = 1;
    const PROBE_READ_KERNEL: i32 = 113;
    const SEQ_WRITE: i32 = 127;
    let (o, ids) = (&k.o, &k.ids);
    let mut a = Asm::new();
    let out = a.label();
    let leader = a.label();
    let have_start = a.label();
    let whole = a.label();
    let go = a.label();
    let outer = a.label();
    let outer_done = a.label();
    let inner = a.label();
    let inner_done = a.label();
    let no_cred = a.label();
    let stale = a.label();
    // `kfunc(&iterator at r10 + slot)`: the loops' next and destroy.
    let on_iter = |a: &mut Asm, slot: i16, kfunc: u32| {
        a.push(&[
            mov_reg(R1, R10),
            add_imm(R1, i32::from(slot)),
            call_kfunc(kfunc),
        ]);
    };
    // `r0 = *(u64 *)reg` for a word at an address held as a number.
    let load_word = |a: &mut Asm, addr: u8| {
        a.push(&[
            mov_reg(R1, addr),
            mov_imm(R2, ids.word as i32),
            call_kfunc(ids.rdonly_cast),
            ldx_dw(R0, R0, 0),
        ]);
    };
    // The seq file, once: a pointer loaded from a trusted one costs the
    // verifier a search of the kernel's BTF by name at every load site.
    a.push(&[
        ldx_dw(R2, R1, CTX_META),
        ldx_dw(R2, R2, o.meta_seq),
        stx_dw(R10, S_SEQ, R2),
        ldx_dw(R1, R1, CTX_TASK),
    ]);
    a.jeq_imm(R1, 0, out);
    // r7 = the task, read as untrusted memory (every load a probe): for
    // the same reason, and nothing here needs a trusted pointer.
    a.push(&[
        mov_imm(R2, ids.task as i32),
        call_kfunc(ids.rdonly_cast),
        mov_reg(R7, R0),
    ]);
    a.push(&[ldx_dw(R1, R7, o.task_files)]);
    a.jeq_imm(R1, 0, out); // a kernel thread, or exiting
    a.push(&[stx_dw(R10, S_FILES, R1)]);
    a.push(&[ldx_w(R2, R7, o.task_tgid), ldx_w(R3, R7, o.task_pid)]);
    a.jmp_reg(JEQ_X, R2, R3, leader);
    // A thread sharing its leader's table: the leader reports it.
    a.push(&[
        ldx_dw(R4, R7, o.task_group_leader),
        ldx_dw(R4, R4, o.task_files),
    ]);
    a.jmp_reg(JEQ_X, R4, R1, out);
    a.bind(leader);
    a.push(&[ldx_dw(R1, R1, o.files_fdt)]);
    a.jeq_imm(R1, 0, out);
    a.push(&[
        ldx_w(R8, R1, o.fdt_max_fds),
        ldx_dw(R2, R1, o.fdt_fd),
        stx_dw(R10, S_FD_ARRAY, R2),
        ldx_dw(R2, R1, o.fdt_open_fds),
        stx_dw(R10, S_OPEN_FDS, R2),
        add_imm(R8, 63),
        rsh_imm(R8, 6), // r8 = words of the bitmap
        st_w(R10, S_KEY, 0),
    ]);
    a.push(&ld_map_fd(R1, resume_map));
    a.push(&[
        mov_reg(R2, R10),
        add_imm(R2, i32::from(S_KEY)),
        call(MAP_LOOKUP),
        mov_imm(R9, 0), // r9 = first word
    ]);
    a.jeq_imm(R0, 0, have_start);
    a.push(&[ldx_w(R1, R0, 0), ldx_w(R2, R7, o.task_pid)]);
    a.jeq_imm(R1, 0, have_start); // every task, from the start
    // A run that resumes one thread walks its process: not this thread.
    a.jmp_reg(JNE_X, R1, R2, out);
    a.push(&[ldx_w(R9, R0, 4)]);
    a.bind(have_start);
    a.push(&[
        mov_reg(R3, R9),
        add_imm(R3, WORDS_PER_RUN as i32),
        st_w(R10, S_NEXT, 0),
    ]);
    a.jmp_reg(JGE_X, R3, R8, whole);
    a.push(&[stx_w(R10, S_NEXT, R3)]); // stops short: say where
    a.ja(go);
    a.bind(whole);
    a.push(&[mov_reg(R3, R8)]);
    a.bind(go);
    a.push(&[
        mov_reg(R1, R10),
        add_imm(R1, i32::from(S_OUTER)),
        mov_reg(R2, R9),
        call_kfunc(ids.num_new),
    ]);
    a.bind(outer);
    on_iter(&mut a, S_OUTER, ids.num_next);
    a.jeq_imm(R0, 0, outer_done);
    a.push(&[
        ldx_w(R8, R0, 0), // r8 = word index
        ldx_dw(R3, R10, stack(S_OPEN_FDS)),
        mov_reg(R2, R8),
        lsh_imm(R2, 3),
        add_reg(R3, R2),
    ]);
    load_word(&mut a, R3);
    a.push(&[mov_reg(R9, R0)]); // r9 = the word's open fds
    a.jeq_imm(R9, 0, outer);
    a.push(&[
        mov_reg(R1, R10),
        add_imm(R1, i32::from(S_INNER)),
        mov_imm(R2, 0),
        mov_imm(R3, 64),
        call_kfunc(ids.num_new),
    ]);
    a.bind(inner);
    on_iter(&mut a, S_INNER, ids.num_next);
    a.jeq_imm(R0, 0, inner_done);
    a.push(&[
        ldx_w(R1, R0, 0), // r1 = bit
        mov_reg(R2, R9),
        rsh_reg(R2, R1),
        and_imm(R2, 1),
    ]);
    a.jeq_imm(R2, 0, inner);
    a.push(&[
        mov_reg(R3, R8),
        lsh_imm(R3, 6),
        add_reg(R3, R1), // r3 = fd
        stx_w(R10, S_REC, R3),
        lsh_imm(R3, 3),
        ldx_dw(R1, R10, stack(S_FD_ARRAY)),
        add_reg(R3, R1),
    ]);
    load_word(&mut a, R3); // r0 = the file's address
    a.jeq_imm(R0, 0, inner);
    a.push(&[
        mov_reg(R1, R0),
        mov_imm(R2, ids.file as i32),
        call_kfunc(ids.rdonly_cast),
        ldx_dw(R1, R0, o.file_inode),
    ]);
    a.jeq_imm(R1, 0, inner);
    a.push(&[ldx_h(R2, R1, o.inode_mode), and_imm(R2, S_IFMT)]);
    a.jne_imm(R2, S_IFSOCK, inner);
    a.push(&[ldx_dw(R2, R1, o.inode_sb)]);
    a.jeq_imm(R2, 0, inner);
    a.push(&[ldx_dw(R2, R2, o.sb_magic)]);
    a.jne_imm(R2, SOCKFS_MAGIC, inner);
    a.push(&[
        ldx_dw(R2, R1, o.inode_ino),
        stx_w(R10, S_REC + 4, R2),
        ldx_dw(R1, R10, stack(S_SEQ)),
        mov_reg(R2, R10),
        add_imm(R2, i32::from(S_REC)),
        mov_imm(R3, 8),
        call(SEQ_WRITE),
    ]);
    a.ja(inner);
    a.bind(inner_done);
    on_iter(&mut a, S_INNER, ids.num_destroy);
    a.ja(outer);
    a.bind(outer_done);
    on_iter(&mut a, S_OUTER, ids.num_destroy);
    // The trailer: tag, tgid, tid, euid, files, comm, next word, stale.
    let t = S_TRAILER;
    a.push(&[
        st_w(R10, t, -1),
        ldx_w(R1, R7, o.task_tgid),
        stx_w(R10, t + 4, R1),
        ldx_w(R1, R7, o.task_pid),
        stx_w(R10, t + 8, R1),
        mov_imm(R2, 0),
        ldx_dw(R1, R7, o.task_real_cred),
    ]);
    a.jeq_imm(R1, 0, no_cred);
    a.push(&[ldx_w(R2, R1, o.cred_uid)]);
    a.bind(no_cred);
    a.push(&[
        stx_w(R10, t + 12, R2),
        ldx_dw(R1, R7, o.task_files),
        stx_dw(R10, t + 16, R1),
        // Stale: the task began to exit, or its table was swapped
        // (unshare, execve), while it was walked: the table may have been
        // freed under the walk (a files_struct is not freed after an RCU
        // grace period), so what was read of it is not to be trusted.
        mov_imm(R4, 1),
        ldx_dw(R2, R10, stack(S_FILES)),
    ]);
    a.jmp_reg(JNE_X, R1, R2, stale);
    a.push(&[ldx_w(R2, R7, o.task_flags), and_imm(R2, PF_EXITING)]);
    a.jne_imm(R2, 0, stale);
    a.push(&[mov_imm(R4, 0)]);
    a.bind(stale);
    a.push(&[
        stx_w(R10, t + 44, R4),
        mov_reg(R1, R10),
        add_imm(R1, i32::from(t + 24)),
        mov_imm(R2, 16),
        mov_reg(R3, R7),
        add_imm(R3, o.task_comm as i32),
        call(PROBE_READ_KERNEL),
        ldx_w(R1, R10, stack(S_NEXT)),
        stx_w(R10, t + 40, R1),
        ldx_dw(R1, R10, stack(S_SEQ)),
        mov_reg(R2, R10),
        add_imm(R2, i32::from(t)),
        mov_imm(R3, TRAILER as i32),
        call(SEQ_WRITE),
    ]);
    a.bind(out);
    a.push(&[mov_imm(R0, 0), exit()]);
    a.finish().expect("the fd-array program assembles")
}

/// The program loaded and attached (every task), with its resume map.
pub struct Walk {
    prog: OwnedFd,
    link: OwnedFd,
    resume: OwnedFd,
    /// One run at a time: a run sets the resume map for the next.
    running: std::sync::Mutex<()>,
}

/// Loaded once per process, for the scans that run again and again
/// (`top`, `export`); a port's scan loads its own ([`load`]).
static PREPARED: std::sync::OnceLock<Result<Walk, BpfOwnerError>> = std::sync::OnceLock::new();

/// The walk, loaded on first use (later calls: the same walk or error).
pub fn prepare() -> Result<&'static Walk, BpfOwnerError> {
    PREPARED.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load_prog(k: &Kernel, resume: &OwnedFd) -> Result<OwnedFd, BpfOwnerError> {
    let code = encode(&program(k, resume.as_raw_fd()));
    let license = b"Dual MIT/GPL\0";
    let try_load = |log: Option<&mut [u8]>| {
        let mut attr = [0u8; 128];
        put32(&mut attr, 0, BPF_PROG_TYPE_TRACING);
        put32(&mut attr, 4, (code.len() / 8) as u32);
        put64(&mut attr, 8, code.as_ptr() as u64);
        put64(&mut attr, 16, license.as_ptr() as u64);
        if let Some(log) = log {
            put32(&mut attr, 24, 1); // log_level
            put32(&mut attr, 28, log.len() as u32);
            put64(&mut attr, 32, log.as_mut_ptr() as u64);
        }
        attr[48..48 + 13].copy_from_slice(b"sockscope_fds");
        put32(&mut attr, 68, BPF_TRACE_ITER);
        put32(&mut attr, 108, k.ids.attach);
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    // Without a log first (the verifier's log costs time); on failure,
    // again with one, for the verifier's reason.
    try_load(None).or_else(|e| {
        let mut log = vec![0u8; 256 * 1024];
        let again = try_load(Some(&mut log));
        let end = log.iter().position(|&c| c == 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&log[..end]);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        again.map_err(|_| {
            BpfOwnerError::Load(if last.is_empty() {
                e.to_string()
            } else {
                format!("{e}; verifier: {last}")
            })
        })
    })
}

/// An array map of one entry: (tid, first word) for a run that resumes a
/// task's walk.
fn resume_map() -> Result<OwnedFd, BpfOwnerError> {
    const BPF_MAP_CREATE: libc::c_long = 0;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    let mut attr = [0u8; 72];
    put32(&mut attr, 0, BPF_MAP_TYPE_ARRAY);
    put32(&mut attr, 4, 4);
    put32(&mut attr, 8, 8);
    put32(&mut attr, 12, 1);
    attr[28..28 + 13].copy_from_slice(b"sockscope_res");
    bpf(BPF_MAP_CREATE, &mut attr).map_err(|e| BpfOwnerError::Load(format!("map: {e}")))
}

fn set_resume(map: &OwnedFd, tid: u32, word: u32) -> Result<(), BpfOwnerError> {
    const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
    let key = 0u32.to_ne_bytes();
    let mut value = [0u8; 8];
    value[..4].copy_from_slice(&tid.to_ne_bytes());
    value[4..].copy_from_slice(&word.to_ne_bytes());
    let mut attr = [0u8; 32];
    put32(&mut attr, 0, map.as_raw_fd() as u32);
    put64(&mut attr, 8, key.as_ptr() as u64);
    put64(&mut attr, 16, value.as_ptr() as u64);
    bpf_cmd(BPF_MAP_UPDATE_ELEM, &mut attr)
        .map(|_| ())
        .map_err(|e| BpfOwnerError::Read(format!("resume map: {e}")))
}

/// Load the program (BTF read once per process).
pub fn load() -> Result<Walk, BpfOwnerError> {
    let ns = rustix::fs::stat("/proc/self/ns/pid")
        .map(|s| s.st_ino)
        .map_err(|_| BpfOwnerError::PidNamespace)?;
    if ns != super::owners_bpf::INIT_PID_NS {
        return Err(BpfOwnerError::PidNamespace);
    }
    let k = kernel()?;
    let resume = resume_map()?;
    let prog = load_prog(k, &resume)?;
    let mut attr = [0u8; 64];
    put32(&mut attr, 0, prog.as_raw_fd() as u32);
    put32(&mut attr, 8, BPF_TRACE_ITER);
    let link =
        bpf(BPF_LINK_CREATE, &mut attr).map_err(|e| BpfOwnerError::Load(format!("link: {e}")))?;
    Ok(Walk {
        prog,
        link,
        resume,
        running: std::sync::Mutex::new(()),
    })
}

fn iter_create(link: &OwnedFd) -> Result<std::fs::File, BpfOwnerError> {
    let mut attr = [0u8; 8];
    put32(&mut attr, 0, link.as_raw_fd() as u32);
    let iter =
        bpf(BPF_ITER_CREATE, &mut attr).map_err(|e| BpfOwnerError::Read(format!("iter: {e}")))?;
    Ok(std::fs::File::from(iter))
}

/// A task as its trailer names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    pub pid: u32,
    pub tid: u32,
    pub uid: u32,
    /// The fd table's address (compared only).
    pub files: u64,
    pub comm: [u8; 16],
}

/// One socket fd: its inode, its number and its task (an index into
/// [`Fds::tasks`]). 12 bytes: a walk of half a million sockets holds 6 MB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fd {
    pub inode: u32,
    pub fd: u32,
    pub task: u32,
}

/// What a walk found: every socket fd, and the tasks holding them.
#[derive(Debug, Default)]
pub struct Fds {
    pub tasks: Vec<Task>,
    pub fds: Vec<Fd>,
}

impl Fds {
    /// `f` as the `task_file` walk's record (`tid` the task's, not folded).
    pub fn record(&self, f: &Fd) -> Record {
        let t = &self.tasks[f.task as usize];
        Record {
            inode: u64::from(f.inode),
            pid: t.pid,
            fd: f.fd,
            tid: t.tid,
            uid: t.uid,
            files: t.files,
            comm: t.comm,
        }
    }
}

/// Decodes the stream of fd records and trailers.
#[derive(Default)]
struct Decoder {
    out: Fds,
    /// Tasks to walk further: (pid, tid, first word).
    resume: Vec<(u32, u32, u32)>,
}

impl Decoder {
    /// Decode whole records of `buf`; the number of bytes used. An fd
    /// belongs to the next trailer's task.
    fn feed(&mut self, buf: &[u8]) -> usize {
        let u32_at = |i: usize| u32::from_ne_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]);
        let mut at = 0;
        while at + 8 <= buf.len() {
            let first = u32_at(at);
            if first != TRAILER_TAG {
                self.out.fds.push(Fd {
                    fd: first,
                    inode: u32_at(at + 4),
                    task: self.out.tasks.len() as u32,
                });
                at += 8;
                continue;
            }
            if at + TRAILER > buf.len() {
                break;
            }
            let t = &buf[at..at + TRAILER];
            let w = |i: usize| u32::from_ne_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
            let mut files = [0u8; 8];
            files.copy_from_slice(&t[16..24]);
            let mut comm = [0u8; 16];
            comm.copy_from_slice(&t[24..40]);
            let (pid, tid, uid, next) = (w(4), w(8), w(12), w(40));
            at += TRAILER;
            if w(44) != 0 {
                // Stale (the program's trailer): its fds are dropped.
                let task = self.out.tasks.len() as u32;
                while self.out.fds.last().is_some_and(|f| f.task == task) {
                    self.out.fds.pop();
                }
                continue;
            }
            self.out.tasks.push(Task {
                pid,
                tid,
                uid,
                files: u64::from_ne_bytes(files),
                comm,
            });
            if next != 0 {
                self.resume.push((pid, tid, next));
            }
        }
        at
    }

    /// The walk's result; fds without a trailer (none unless the output
    /// was cut) are dropped.
    fn finish(mut self) -> Fds {
        let n = self.out.tasks.len() as u32;
        self.out.fds.retain(|f| f.task < n);
        self.out
    }
}

impl Walk {
    /// Walk every task's fds.
    pub fn run_fds(&self) -> Result<Fds, BpfOwnerError> {
        let _one = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = Decoder::default();
        set_resume(&self.resume, 0, 0)?;
        read_all(&mut iter_create(&self.link)?, &mut d)?;
        // Tasks with more fds than one run walks: one task at a time.
        while let Some((pid, tid, word)) = d.resume.pop() {
            set_resume(&self.resume, tid, word)?;
            // bpf_iter_link_info.task: tid at 0, pid at 4 (see the top).
            let mut info = [0u8; 16];
            put32(&mut info, 4, pid);
            let mut attr = [0u8; 64];
            put32(&mut attr, 0, self.prog.as_raw_fd() as u32);
            put32(&mut attr, 8, BPF_TRACE_ITER);
            put64(&mut attr, 16, info.as_ptr() as u64);
            put32(&mut attr, 24, info.len() as u32);
            let link = match bpf(BPF_LINK_CREATE, &mut attr) {
                Ok(l) => l,
                // The task exited: nothing more to read of it.
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => continue,
                Err(e) => return Err(BpfOwnerError::Read(format!("link for task {tid}: {e}"))),
            };
            let queued = d.resume.len();
            read_all(&mut iter_create(&link)?, &mut d)?;
            // A run that resumes a thread may only ask to go on with that
            // thread, further on: anything else would walk in circles.
            let mut i = queued;
            while i < d.resume.len() {
                let (p, t, w) = d.resume[i];
                if (p, t) == (pid, tid) && w > word {
                    i += 1;
                } else {
                    d.resume.swap_remove(i);
                }
            }
        }
        Ok(d.finish())
    }

    /// Walk every task's fds into an owner scan (threads folded as the
    /// `task_file` walk's).
    pub fn run(&self) -> Result<OwnerScan, BpfOwnerError> {
        let f = self.run_fds()?;
        // Records made one at a time into the scan: a vector of them
        // would hold 48 bytes per socket fd beside the scan's own.
        Ok(super::owners_bpf::scan_of(
            f.fds.iter().map(|x| f.record(x)),
        ))
    }
}

fn read_all(file: &mut std::fs::File, d: &mut Decoder) -> Result<(), BpfOwnerError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0;
    loop {
        let n = file
            .read(&mut buf[have..])
            .map_err(|e| BpfOwnerError::Read(e.to_string()))?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let used = d.feed(&buf[..have]);
        buf.copy_within(used..have, 0);
        have -= used;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(pid: u32, tid: u32, next: u32) -> Vec<u8> {
        trailer_stale(pid, tid, next, false)
    }

    fn trailer_stale(pid: u32, tid: u32, next: u32, stale: bool) -> Vec<u8> {
        let mut t = vec![0u8; TRAILER];
        t[..4].copy_from_slice(&TRAILER_TAG.to_ne_bytes());
        t[4..8].copy_from_slice(&pid.to_ne_bytes());
        t[8..12].copy_from_slice(&tid.to_ne_bytes());
        t[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        t[16..24].copy_from_slice(&0xdead_beefu64.to_ne_bytes());
        t[24..29].copy_from_slice(b"nginx");
        t[40..44].copy_from_slice(&next.to_ne_bytes());
        t[44..48].copy_from_slice(&u32::from(stale).to_ne_bytes());
        t
    }

    #[test]
    fn a_stale_trailer_drops_its_tasks_fds_and_resumes_nothing() {
        let buf = [
            fd(3, 77),
            trailer(10, 10, 0),
            fd(3, 90),
            fd(4, 91),
            trailer_stale(20, 20, 63, true),
            fd(5, 92),
            trailer(30, 30, 0),
        ]
        .concat();
        let mut d = Decoder::default();
        assert_eq!(d.feed(&buf), buf.len());
        assert!(d.resume.is_empty());
        let f = d.finish();
        let got: Vec<_> = f
            .fds
            .iter()
            .map(|x| f.record(x))
            .map(|r| (r.pid, r.fd, r.inode))
            .collect();
        assert_eq!(got, vec![(10, 3, 77), (30, 5, 92)]);
    }

    fn fd(fd: u32, ino: u32) -> Vec<u8> {
        [fd.to_ne_bytes(), ino.to_ne_bytes()].concat()
    }

    #[test]
    fn decodes_fds_then_their_task_and_where_to_resume() {
        let mut buf = [fd(3, 77), fd(9, 78), trailer(10, 10, 0)].concat();
        buf.extend([fd(4, 79), trailer(10, 12, 63)].concat());
        buf.extend(trailer(11, 11, 0)); // a task without sockets
        let mut d = Decoder::default();
        // Fed in two pieces cut inside a trailer: nothing is lost.
        let cut = 16 + 20;
        let used = d.feed(&buf[..cut]);
        assert_eq!(used, 16, "the torn trailer waits");
        let rest = [&buf[used..]].concat();
        assert_eq!(d.feed(&rest), rest.len());
        // And fds whose trailer never came are dropped.
        d.feed(&fd(5, 80));
        assert_eq!(d.resume, vec![(10, 12, 63)]);
        let f = d.finish();
        let got: Vec<Record> = f.fds.iter().map(|x| f.record(x)).collect();
        let seen: Vec<_> = got.iter().map(|r| (r.pid, r.tid, r.fd, r.inode)).collect();
        assert_eq!(
            seen,
            vec![(10, 10, 3, 77), (10, 10, 9, 78), (10, 12, 4, 79)]
        );
        assert_eq!(got[0].comm(), "nginx");
        assert_eq!((got[0].uid, got[0].files), (1000, 0xdead_beef));
        assert_eq!(f.tasks.len(), 3);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let k = Kernel {
            o: Offsets {
                meta_seq: 0,
                task_tgid: 8,
                task_pid: 12,
                task_files: 16,
                task_comm: 24,
                task_real_cred: 40,
                task_group_leader: 48,
                task_flags: 56,
                cred_uid: 4,
                files_fdt: 32,
                fdt_max_fds: 0,
                fdt_fd: 8,
                fdt_open_fds: 24,
                file_inode: 32,
                inode_mode: 0,
                inode_ino: 64,
                inode_sb: 40,
                sb_magic: 96,
            },
            ids: Ids {
                attach: 1,
                num_new: 2,
                num_next: 3,
                num_destroy: 4,
                rdonly_cast: 5,
                word: 6,
                file: 7,
                task: 8,
            },
        };
        let p = program(&k, 3);
        for (i, insn) in p.iter().enumerate() {
            let class = insn.0 & 0x07;
            let op = insn.0 & 0xf0;
            if class == 0x05 && op != 0x80 && op != 0x90 {
                let to = i as i64 + 1 + i64::from(insn.2);
                assert!((0..p.len() as i64).contains(&to), "jump at {i} to {to}");
            }
        }
        assert_eq!(p.last(), Some(&exit()));
    }

    /// Every socket fd of the processes other than this one (whose other
    /// tests open and close sockets meanwhile), by both walks.
    fn others(scan: &OwnerScan) -> std::collections::BTreeSet<(u32, u32, u32, u64, u32, String)> {
        let me = std::process::id();
        scan.entries()
            .iter()
            .map(|e| {
                let o = scan.entry_owner(e);
                (
                    o.pid,
                    o.tid.unwrap_or(0),
                    o.fd,
                    e.inode,
                    o.uid.unwrap_or(0),
                    o.comm.to_string(),
                )
            })
            .filter(|o| o.0 != me)
            .collect()
    }

    #[test]
    fn agrees_with_the_task_file_walk() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: the fd-array walk needs root");
            return;
        }
        let walk = load().expect("the fd-array program loads on this kernel");
        let old = super::super::owners_bpf::prepare().expect("the task_file program loads");
        // A process may open or close a socket between the two walks:
        // compare again; only a difference that stays is a failure.
        let mut last = None;
        for _ in 0..5 {
            let new = others(&walk.run().expect("walk"));
            let old_set = others(&old.run().expect("task_file walk"));
            if new == old_set {
                return;
            }
            let only_new: Vec<_> = new.difference(&old_set).take(5).cloned().collect();
            let only_old: Vec<_> = old_set.difference(&new).take(5).cloned().collect();
            last = Some((only_new, only_old));
        }
        panic!("the two walks differ (only fd-array, only task_file): {last:?}");
    }
}
