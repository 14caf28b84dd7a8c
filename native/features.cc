// Kernel feature probes: small real loads, attaches and map operations,
// each undone at once. The glue only reports what the kernel answered (and
// which call it was); ts/features.ts decides what that means and caches it.
#include "glue.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <bpf/btf.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace glue {

namespace {

// Attach types newer than the uapi headers of Debian 12 (linux 6.1): the
// kernel takes them by number.
constexpr int kTcxIngress = 46;
constexpr int kTraceUprobeMulti = 48;

// What failed: the errno and the call that returned it (op empty: success).
struct Outcome {
  int err = 0;
  std::string op;
};

Outcome Failed(const std::string& op, int err = errno) { return Outcome{err > 0 ? err : -err, op}; }

// A file descriptor closed when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// `r0 = ret; exit`: accepted by every program type probed here.
int LoadProg(bpf_prog_type type, int expected, int btfId, int ret, Outcome& out) {
  struct bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[0].dst_reg = BPF_REG_0;
  insns[0].imm = ret;
  insns[1].code = BPF_JMP | BPF_EXIT;
  LIBBPF_OPTS(bpf_prog_load_opts, o);
  o.expected_attach_type = static_cast<bpf_attach_type>(expected);
  o.attach_btf_id = btfId;
  LogCapture quiet(LogCapture::kQuiet);  // libbpf's retry notes are not an error here
  int fd = bpf_prog_load(type, nullptr, "GPL", insns, 2, &o);
  if (fd < 0) out = Failed("bpf_prog_load");
  return fd;
}

int VmlinuxBtfId(const char* name, bpf_attach_type type, Outcome& out) {
  LogCapture quiet(LogCapture::kQuiet);
  int id = libbpf_find_vmlinux_btf_id(name, type);
  if (id < 0) out = Failed(std::string("libbpf_find_vmlinux_btf_id(") + name + ")", id);
  return id;
}

// The kprobe PMU: perf_event_open of a kprobe on `vprintk`, with a program.
Outcome Kprobes() {
  Outcome out;
  const char* typePath = "/sys/bus/event_source/devices/kprobe/type";
  FILE* f = fopen(typePath, "r");
  if (f == nullptr) return Failed(std::string("open(") + typePath + ")");
  int type = -1;
  int n = fscanf(f, "%d", &type);
  fclose(f);
  if (n != 1) return Failed(std::string("read(") + typePath + ")", EINVAL);
  Fd prog(LoadProg(BPF_PROG_TYPE_KPROBE, 0, 0, 0, out));
  if (prog.fd < 0) return out;
  perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config1 = reinterpret_cast<uint64_t>("vprintk");
  Fd ev(static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
  if (ev.fd < 0) return Failed("perf_event_open(kprobe vprintk)");
  if (ioctl(ev.fd, PERF_EVENT_IOC_SET_BPF, prog.fd) != 0) return Failed("ioctl(PERF_EVENT_IOC_SET_BPF)");
  return out;
}

Outcome KprobeMulti() {
  Outcome out;
  Fd prog(LoadProg(BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, 0, 0, out));
  if (prog.fd < 0) return out;
  const char* syms[] = {"vprintk"};
  LIBBPF_OPTS(bpf_link_create_opts, o);
  o.kprobe_multi.syms = syms;
  o.kprobe_multi.cnt = 1;
  Fd link(bpf_link_create(prog.fd, 0, BPF_TRACE_KPROBE_MULTI, &o));
  if (link.fd < 0) return Failed("bpf_link_create(kprobe_multi)");
  return out;
}

// As libbpf probes it: a uprobe.multi link on "/" gets as far as the path
// check (EBADF: not a regular file) only where the kernel has the type.
// libbpf 1.1's bpf_link_create has no uprobe_multi fields: raw syscall.
Outcome UprobeMulti() {
  Outcome out;
  Fd prog(LoadProg(BPF_PROG_TYPE_KPROBE, kTraceUprobeMulti, 0, 0, out));
  if (prog.fd < 0) return out;
  struct {
    uint32_t progFd, targetFd, attachType, flags;
    uint64_t path, offsets, refCtrOffsets, cookies;
    uint32_t cnt, umFlags, pid, pad;
  } attr = {};
  uint64_t offset = 0;
  attr.progFd = prog.fd;
  attr.attachType = kTraceUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>("/");
  attr.offsets = reinterpret_cast<uint64_t>(&offset);
  attr.cnt = 1;
  Fd link(static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr))));
  if (link.fd < 0 && errno != EBADF) return Failed("bpf_link_create(uprobe_multi)");
  return out;
}

// A tcx link on lo (ifindex 1) whose program says TCX_NEXT, detached at once.
Outcome Tcx() {
  Outcome out;
  Fd prog(LoadProg(BPF_PROG_TYPE_SCHED_CLS, kTcxIngress, 0, -1, out));
  if (prog.fd < 0) return out;
  LIBBPF_OPTS(bpf_link_create_opts, o);
  Fd link(bpf_link_create(prog.fd, 1, static_cast<bpf_attach_type>(kTcxIngress), &o));
  if (link.fd < 0) return Failed("bpf_link_create(tcx_ingress)");
  return out;
}

// A perf_event link with a cookie, on a software event of this process.
Outcome BpfCookie() {
  Outcome out;
  Fd prog(LoadProg(BPF_PROG_TYPE_PERF_EVENT, 0, 0, 0, out));
  if (prog.fd < 0) return out;
  perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.sample_period = 1ULL << 40;
  attr.disabled = 1;
  Fd ev(static_cast<int>(syscall(__NR_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC)));
  if (ev.fd < 0) return Failed("perf_event_open(cpu-clock)");
  LIBBPF_OPTS(bpf_link_create_opts, o);
  o.perf_event.bpf_cookie = 1;
  Fd link(bpf_link_create(prog.fd, ev.fd, BPF_PERF_EVENT, &o));
  if (link.fd < 0) return Failed("bpf_link_create(perf_event)");
  return out;
}

// A program on a BPF trampoline: fentry on bpf_fentry_test1, or an LSM hook.
Outcome Trampoline(bpf_prog_type type, bpf_attach_type attach, const char* target) {
  Outcome out;
  int id = VmlinuxBtfId(target, attach, out);
  if (id < 0) return out;
  Fd prog(LoadProg(type, attach, id, 0, out));
  if (prog.fd < 0) return out;
  Fd link(bpf_raw_tracepoint_open(nullptr, prog.fd));
  if (link.fd < 0) return Failed("bpf_raw_tracepoint_open");
  return out;
}

// An iterator link of `target` (bpf_map_elem over a one-element array).
Outcome Iterator(const std::string& target) {
  Outcome out;
  int id = VmlinuxBtfId(target.c_str(), BPF_TRACE_ITER, out);
  if (id < 0) return out;
  Fd prog(LoadProg(BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, id, 0, out));
  if (prog.fd < 0) return out;
  LIBBPF_OPTS(bpf_link_create_opts, o);
  union bpf_iter_link_info li = {};
  Fd map(-1);
  if (target == "bpf_map_elem") {
    map.fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 4, 1, nullptr);
    if (map.fd < 0) return Failed("bpf_map_create(array)");
    li.map.map_fd = map.fd;
    o.iter_info = &li;
    o.iter_info_len = sizeof(li);
  }
  Fd link(bpf_link_create(prog.fd, 0, BPF_TRACE_ITER, &o));
  if (link.fd < 0) return Failed("bpf_link_create(iter)");
  return out;
}

// Map operations on a small hash map: lookup_and_delete, or a batch lookup.
Outcome HashMapOp(bool batch) {
  Fd map(bpf_map_create(BPF_MAP_TYPE_HASH, nullptr, 4, 4, 2, nullptr));
  if (map.fd < 0) return Failed("bpf_map_create(hash)");
  uint32_t key = 1, value = 2;
  if (bpf_map_update_elem(map.fd, &key, &value, BPF_ANY) != 0) return Failed("bpf_map_update_elem");
  if (!batch) {
    if (bpf_map_lookup_and_delete_elem(map.fd, &key, &value) != 0) return Failed("bpf_map_lookup_and_delete_elem");
    return Outcome{};
  }
  uint32_t keys[2], values[2], out = 0, count = 2;
  LIBBPF_OPTS(bpf_map_batch_opts, o);
  // ENOENT says the whole map was read: that is success.
  if (bpf_map_lookup_batch(map.fd, nullptr, &out, keys, values, &count, &o) != 0 && errno != ENOENT) {
    return Failed("bpf_map_lookup_batch");
  }
  return Outcome{};
}

// Whether programs of `type` may call helper `id`: a program that calls it,
// and the verifier's word. libbpf 1.1's own helper probe misses the wording
// of newer kernels ("program of this type cannot use helper ..."), and so
// answers yes to everything it does not know; this one reads the log itself.
// 1 yes, 0 no, < 0 -errno when the program type itself could not be tried.
int ProbeHelper(bpf_prog_type type, int id) {
  // Types whose probe needs an attach target: libbpf's answer (-EOPNOTSUPP).
  if (type == BPF_PROG_TYPE_TRACING || type == BPF_PROG_TYPE_EXT || type == BPF_PROG_TYPE_LSM ||
      type == BPF_PROG_TYPE_STRUCT_OPS) {
    return libbpf_probe_bpf_helper(type, static_cast<bpf_func_id>(id), nullptr);
  }
  struct bpf_insn insns[3] = {};
  insns[0].code = BPF_JMP | BPF_CALL;
  insns[0].imm = id;
  insns[1].code = BPF_ALU64 | BPF_MOV | BPF_K;
  insns[1].dst_reg = BPF_REG_0;
  insns[2].code = BPF_JMP | BPF_EXIT;
  static char log[16384];
  log[0] = '\0';
  LIBBPF_OPTS(bpf_prog_load_opts, o);
  o.log_buf = log;
  o.log_size = sizeof(log);
  o.log_level = 1;
  // The attach type the kernel insists on for some program types.
  switch (type) {
    case BPF_PROG_TYPE_CGROUP_SOCK: o.expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE; break;
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR: o.expected_attach_type = BPF_CGROUP_INET4_CONNECT; break;
    case BPF_PROG_TYPE_CGROUP_SOCKOPT: o.expected_attach_type = BPF_CGROUP_GETSOCKOPT; break;
    case BPF_PROG_TYPE_SK_LOOKUP: o.expected_attach_type = BPF_SK_LOOKUP; break;
    case BPF_PROG_TYPE_SYSCALL: o.prog_flags = BPF_F_SLEEPABLE; break;
    default: break;
  }
  LogCapture quiet(LogCapture::kQuiet);
  int fd = bpf_prog_load(type, nullptr, "GPL", insns, 3, &o);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  int err = errno;
  if (strstr(log, "invalid func ") || strstr(log, "unknown func ") || strstr(log, "cannot use helper")) return 0;
  // No verifier output at all: the type was refused before verification.
  if (log[0] == '\0') return -err;
  return 1;  // the verifier knew the helper and objected to something else (its arguments)
}

Napi::Value Answer(Napi::Env env, const Outcome& o) {
  if (o.op.empty()) return env.Null();
  Napi::Object r = Napi::Object::New(env);
  r.Set("errno", o.err);
  r.Set("op", o.op);
  return r;
}

// A netfilter program (type 32, expected attach type BPF_NETFILTER 45,
// numbers the Debian 12 headers lack) returning NF_ACCEPT: loaded, not
// attached.
Outcome Netfilter() {
  Outcome out;
  Fd prog(LoadProg(static_cast<bpf_prog_type>(32), 45, 0, 1, out));
  return out;
}

// A struct_ops map of tcp_congestion_ops, created with the kernel's value
// type (bpf_struct_ops_tcp_congestion_ops in vmlinux BTF): what the kernel
// needs before any struct_ops program can be registered. Nothing is
// registered. With `link`, the map is made with BPF_F_LINK (Linux 6.4), as
// struct_ops links need.
Outcome StructOps(bool link) {
  LogCapture quiet;
  btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return Failed("btf__load_vmlinux_btf");
  int id = btf__find_by_name_kind(vmlinux, "bpf_struct_ops_tcp_congestion_ops", BTF_KIND_STRUCT);
  long long size = id > 0 ? btf__resolve_size(vmlinux, id) : -ENOENT;
  btf__free(vmlinux);
  if (id <= 0) return Failed("btf__find_by_name_kind(bpf_struct_ops_tcp_congestion_ops)", ENOENT);
  if (size <= 0) return Failed("btf__resolve_size", static_cast<int>(size));
  // The kernel takes a struct_ops map only from an object with BTF of its
  // own (btf_fd): one int type stands for it.
  btf* own = btf__new_empty();
  if (own == nullptr) return Failed("btf__new_empty");
  btf__add_int(own, "int", 4, BTF_INT_SIGNED);
  if (btf__load_into_kernel(own) != 0) {
    Outcome out = Failed("btf__load_into_kernel");
    btf__free(own);
    return out;
  }
  LIBBPF_OPTS(bpf_map_create_opts, o, .btf_fd = static_cast<__u32>(btf__fd(own)),
              .btf_vmlinux_value_type_id = static_cast<__u32>(id), .map_flags = link ? 1u << 13 : 0);
  Fd map(bpf_map_create(BPF_MAP_TYPE_STRUCT_OPS, "lbn_probe", 4, static_cast<__u32>(size), 1, &o));
  int err = errno;
  btf__free(own);
  errno = err;
  if (map.fd < 0) return Failed("bpf_map_create(BPF_MAP_TYPE_STRUCT_OPS)");
  return Outcome{};
}

}  // namespace

// probeType('prog' | 'map', type): libbpf's own probes; probeType('helper',
// progType, helperId): ProbeHelper. 1 yes, 0 no, < 0 -errno of a probe that
// could not run.
Napi::Value ProbeType(const Napi::CallbackInfo& info) {
  std::string kind = info[0].As<Napi::String>();
  uint32_t a = info[1].As<Napi::Number>().Uint32Value();
  LogCapture quiet(LogCapture::kQuiet);
  int r;
  if (kind == "prog") {
    r = libbpf_probe_bpf_prog_type(static_cast<bpf_prog_type>(a), nullptr);
  } else if (kind == "map") {
    r = libbpf_probe_bpf_map_type(static_cast<bpf_map_type>(a), nullptr);
  } else {
    r = ProbeHelper(static_cast<bpf_prog_type>(a), info[2].As<Napi::Number>().Int32Value());
  }
  return Napi::Number::New(info.Env(), r);
}

// probeFeature(name[, arg]): null when the kernel did it, else {errno, op}.
Napi::Value ProbeFeature(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  if (name == "kprobes") return Answer(env, Kprobes());
  if (name == "kprobe_multi") return Answer(env, KprobeMulti());
  if (name == "uprobe_multi") return Answer(env, UprobeMulti());
  if (name == "tcx") return Answer(env, Tcx());
  if (name == "bpf_cookie") return Answer(env, BpfCookie());
  if (name == "fentry") return Answer(env, Trampoline(BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, "bpf_fentry_test1"));
  if (name == "lsm") return Answer(env, Trampoline(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, "file_open"));
  if (name == "iter") return Answer(env, Iterator(info[1].As<Napi::String>()));
  if (name == "lookup_and_delete_hash") return Answer(env, HashMapOp(false));
  if (name == "batch_ops") return Answer(env, HashMapOp(true));
  if (name == "netfilter") return Answer(env, Netfilter());
  if (name == "struct_ops") return Answer(env, StructOps(false));
  if (name == "struct_ops_link") return Answer(env, StructOps(true));
  ThrowState(env, "ERR_INVALID_ARG_VALUE", "unknown feature probe '" + name + "'");
}

}  // namespace glue
