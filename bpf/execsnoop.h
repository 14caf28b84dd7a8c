/* SPDX-License-Identifier: GPL-2.0 */
/*
 * execsnoop's record, shared with user space as tools do. The arguments go
 * NUL-separated into args, and only the used part is sent:
 * sizeof(struct event) - FULL_MAX_ARGS_ARR + args_size bytes. The type is
 * not in execsnoop.bpf.o's BTF; execsnoop_types.bpf.o carries it.
 */
#ifndef EXECSNOOP_H
#define EXECSNOOP_H

#define TASK_COMM_LEN 16
#define ARGSIZE 128
#define TOTAL_MAX_ARGS 60
#define DEFAULT_MAXARGS 20
#define FULL_MAX_ARGS_ARR (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (FULL_MAX_ARGS_ARR - ARGSIZE)

struct event {
	int pid;
	int ppid;
	unsigned int uid;
	int retval;
	int args_count;
	unsigned int args_size;
	char comm[TASK_COMM_LEN];
	char args[FULL_MAX_ARGS_ARR];
};

#endif
