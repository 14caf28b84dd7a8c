/* SPDX-License-Identifier: GPL-2.0 */
/* Counters shared by the attach test programs: `hits[slot]` counts what
 * process `settings[0]` does (every process when it is 0). Define NSLOTS
 * before including this. */
#ifndef LBN_HITS_H
#define LBN_HITS_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, NSLOTS);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 1);
} settings SEC(".maps");

static bool mine(void)
{
	__u32 key = 0;
	__u64 *target = bpf_map_lookup_elem(&settings, &key);

	return target && (!*target || *target == bpf_get_current_pid_tgid() >> 32);
}

static void hit(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&hits, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

#endif
