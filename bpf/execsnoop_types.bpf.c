// SPDX-License-Identifier: GPL-2.0
// execsnoop.h's types in a BTF of their own (clang emits the types of
// global variables): Btf.fromFile('execsnoop_types.bpf.o') decodes
// execsnoop.bpf.o's records, and `gen skeleton --types` types them.
#include "execsnoop.h"

struct event *execsnoop_event;
