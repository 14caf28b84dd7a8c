/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The record varlen_test.bpf.c sends, declared the way tools share a header
 * with user space: the type is used only through pointers in the program
 * (its maps are sized with value_size, not typed), so it never reaches the
 * object's BTF. varlen_types.bpf.c puts it in a BTF of its own.
 */
#ifndef VARLEN_H
#define VARLEN_H

#define VARLEN_MAX_TEXT 48

struct event {
	unsigned int seq;
	unsigned short flags;
	unsigned int pid;	/* after 2 bytes of padding */
	unsigned long long nr;	/* after 4 bytes of padding */
	char comm[16];
	char text[];		/* only the used part is sent */
};

/* A fixed-size trailing array of numbers, for the codec tests. */
struct numbers {
	unsigned int count;
	unsigned char kind;
	unsigned int vals[16];
};

#endif
