/* SPDX-License-Identifier: (MIT OR Apache-2.0) */
/*
 * batch.c: write each CPU's batch of events (output() in common.h) at its
 * timer ticks and when it goes idle, so that no event waits in a batch
 * for long: a CPU that goes quiet writes what it gathered at once; a busy
 * one writes at least once per tick.
 */

/* hrtimer_expire_entry: every tick (tick_sched_timer is an hrtimer), and
 * every other hrtimer, in hard interrupt context. */
SEC("tp_btf/hrtimer_expire_entry")
int ss_batch_tick(unsigned long long *ctx)
{
	if (cfg_noop_all || !cfg_batch)
		return 0;
	flush_here();
	return 0;
}

/* power:cpu_idle: state is (u32)-1 when leaving idle. */
SEC("tp_btf/cpu_idle")
int ss_batch_idle(unsigned long long *ctx)
{
	if (cfg_noop_all || !cfg_batch)
		return 0;
	if ((__u32)ctx[0] == (__u32)-1)
		return 0;
	flush_here();
	return 0;
}
