/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * helpers.h: the BPF helper calls, section and map-definition macros
 * sockscope uses, declared here so the programs build with clang alone (no
 * libbpf headers, no system headers: the build passes -nostdinc).
 *
 * A helper is called through a function pointer whose value is its number
 * in the kernel's helper table (include/uapi/linux/bpf.h, enum bpf_func_id).
 */
#ifndef SOCKSCOPE_HELPERS_H
#define SOCKSCOPE_HELPERS_H

#include "kernel.h"

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))

/* BTF-defined maps: the loader reads type, sizes and flags from these
 * members' types. */
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

/* enum bpf_map_type */
#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_MAP_TYPE_LPM_TRIE 11
#define BPF_MAP_TYPE_RINGBUF 27
#define BPF_MAP_TYPE_TASK_STORAGE 29

/* map flags, update flags */
#define BPF_F_NO_PREALLOC 1
#define BPF_ANY 0
#define BPF_NOEXIST 1

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
				   __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static __u32 (*bpf_get_smp_processor_id)(void) = (void *)8;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_get_current_comm)(void *buf, __u32 size) = (void *)16;
/* In tracing programs this is bpf_get_socket_ptr_cookie: it takes a BTF
 * pointer to a socket and makes the cookie if the socket had none yet. */
static __u64 (*bpf_get_socket_cookie)(const void *sk) = (void *)46;
static long (*bpf_probe_read_user)(void *dst, __u32 size, const void *src) = (void *)112;
static long (*bpf_probe_read_kernel)(void *dst, __u32 size, const void *src) = (void *)113;
static void *(*bpf_ringbuf_reserve)(void *ringbuf, __u64 size, __u64 flags) = (void *)131;
static void (*bpf_ringbuf_submit)(void *data, __u64 flags) = (void *)132;
static struct task_struct *(*bpf_get_current_task_btf)(void) = (void *)158;
static struct pt_regs *(*bpf_task_pt_regs)(struct task_struct *task) = (void *)175;
/* Task-local storage (one value per task, no hashing). */
static void *(*bpf_task_storage_get)(void *map, struct task_struct *task, void *value,
				     __u64 flags) = (void *)156;
#define BPF_LOCAL_STORAGE_GET_F_CREATE 1

/* A socket as a tcp_sock (NULL when it is not one), as a BTF pointer. */
static struct tcp_sock *(*bpf_skc_to_tcp_sock)(const void *sk) = (void *)137;

/* Two ways to read kernel memory:
 *
 * - Through a BTF pointer (a tp_btf argument, bpf_get_current_task_btf(),
 *   and pointers loaded from those), fields are read directly
 *   (`sk->__sk_common.skc_num`): the verifier knows the type, clang
 *   records a CO-RE relocation, and a fault reads as 0. This is the fast
 *   path, used by every program that runs per packet or per call.
 * - Through a plain address (what the fd-table walk finds), with KREAD:
 *   bpf_probe_read_kernel at a CO-RE relocated address, 0 on a fault. */
#define KREAD(dst, src)                                                        \
	({                                                                     \
		if (bpf_probe_read_kernel(&(dst), sizeof(dst),                 \
					  (const void *)__builtin_preserve_access_index(&(src)))) \
			__builtin_memset(&(dst), 0, sizeof(dst));              \
	})

/* - Through a plain address turned into a BTF pointer with the kfunc
 *   bpf_rdonly_cast (Linux 6.2+): then fields are read directly as
 *   above. The verifier drops the call itself, and each read costs a
 *   load instead of a helper call; the syscall programs' fd-table walk
 *   takes this path when the loader found the kfunc (cfg_kfunc_cast).
 *   aya does not link kfuncs (and the kernel refuses the "extern" BTF
 *   entry a declared kfunc brings), so the call is written as a call to a
 *   helper with an id no helper has, KFUNC_RDONLY_CAST, and the loader
 *   (src/kfunc.rs) turns each such call into the kfunc call. */
#define KFUNC_RDONLY_CAST 0x0535c0be
static void *(*bpf_rdonly_cast)(const void *obj, __u32 btf_id) = (void *)KFUNC_RDONLY_CAST;
#define CAST(type, p) ((type *)bpf_rdonly_cast((p), __builtin_btf_type_id(*(type *)0, 1)))

/* The arguments of a tp_btf / raw_tp program: an array of u64. */
#define CTX_ARG(ctx, i) (((unsigned long long *)(ctx))[i])

#endif
