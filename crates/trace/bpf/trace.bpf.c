/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * trace.bpf.c: the one compilation unit of sockscope's tracer. Each
 * concern lives in its own small file; they are included here so that
 * they share one ring buffer and one set of owner maps in a single object
 * (separate objects could only share maps through pinning in bpffs).
 *
 * Built by build.sh (clang -target bpfel, CO-RE, no system headers); the
 * objects are committed and scripts/check-bpf rebuilds them to prove they
 * match these sources.
 */

#include "common.h"
#include "packet.h"

#include "state.c"
#include "retransmit.c"
#include "reset.c"
#include "destroy.c"
#include "drop.c"
#include "syscalls.c"
#include "io.c"
#include "netdev.c"
#include "wait.c"
#include "batch.c"

/* GPL-compatible: the probe_read and task helpers are GPL-only. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
