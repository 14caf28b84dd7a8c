// SPDX-License-Identifier: GPL-2.0
// The types of varlen.h, compiled once so that they reach a BTF (clang
// emits the types of global variables): user space decodes
// varlen_test.bpf.o's records with Btf.fromFile('varlen_types.bpf.o').
#include "varlen.h"

struct event *varlen_event;
struct numbers *varlen_numbers;
