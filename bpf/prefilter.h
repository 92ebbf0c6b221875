/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * Prefilters the agent sets from what it consumes (crates/sensor/src/prefilter.rs):
 *   skip_types  syscall event types no loaded rule (nor the agent's own state)
 *               can use: their syscalls return at once (at exit; at entry for
 *               setns and unshare), so they never reach the ring buffer;
 *               capability checks (EV_CAPABLE) likewise return before any
 *               work. All zero (the default, and what `events`,
 *               `capture` and `record` keep) lets everything through.
 *   skip_fields fields no loaded rule reads, left out of the records that
 *               carry them: SKIPF_RAW_PATH, an open's path as passed
 *               (fd.nameraw), a user-memory string copy on every open.
 *   quiet       set once the agent has stopped: the syscall programs return at
 *               once and the in-kernel kills are off while the links are still
 *               being released (see Sensor::drop).
 * Included by sensor.bpf.c before syscalls.h and kill.h's users.
 */
#ifndef RAMPART_PREFILTER_H
#define RAMPART_PREFILTER_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, EV_TYPE_MAX);
	__type(key, __u32);
	__type(value, __u8);
} skip_types SEC(".maps");

#define SKIPF_RAW_PATH 1

/* One slot: SKIPF_* bits. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} skip_fields SEC(".maps");

/* One slot: 1 once the agent stopped. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} quiet SEC(".maps");

static __always_inline bool type_skipped(__u32 type)
{
	__u8 *v = bpf_map_lookup_elem(&skip_types, &type);
	return v && *v;
}

static __always_inline bool field_skipped(__u32 bit)
{
	__u32 zero = 0;
	__u32 *v = bpf_map_lookup_elem(&skip_fields, &zero);
	return v && (*v & bit);
}

static __always_inline bool agent_quiet(void)
{
	__u32 zero = 0;
	__u8 *v = bpf_map_lookup_elem(&quiet, &zero);
	return v && *v;
}

#endif /* RAMPART_PREFILTER_H */
