// Introspection: what bpf_obj_get_info_by_fd says of a program, map or link,
// the kernel-wide id walks, run-time statistics and attach queries. Each
// call takes an fd the TypeScript layer vouches for and returns the kernel's
// answer as plain values; naming, typing and policy are in ts/introspect.ts.
#include "glue.h"

#include <bpf/btf.h>
#include <linux/if_link.h>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <ctime>
#include <unistd.h>

namespace glue {

namespace {

int FdArg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }
uint32_t U32Arg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Uint32Value(); }

Napi::Value Big(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

// Whether the kernel filled `field`: it writes back how much of the struct
// it knows (info_len), so fields newer than the running kernel stay unset
// (verified_insns is 5.16, recursion_misses 5.12, ...).
#define HAVE(len, type, field) (offsetof(type, field) + sizeof(((type*)nullptr)->field) <= (len))

int64_t ClockNs(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

// progInfo(fd): bpf_prog_info, map ids included.
Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  bpf_prog_info pi{};
  __u32 len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
  // The map ids need a second call with room for them; the set can change
  // in between (it cannot for a loaded program, but be safe: take the min).
  std::vector<__u32> mapIds(pi.nr_map_ids);
  if (pi.nr_map_ids > 0) {
    bpf_prog_info again{};
    __u32 len2 = sizeof(again);
    again.nr_map_ids = pi.nr_map_ids;
    again.map_ids = reinterpret_cast<uintptr_t>(mapIds.data());
    if (bpf_obj_get_info_by_fd(fd, &again, &len2) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
    mapIds.resize(std::min(again.nr_map_ids, pi.nr_map_ids));
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", pi.type);
  o.Set("id", pi.id);
  o.Set("tag", Hex(pi.tag, sizeof(pi.tag)));
  o.Set("jitedSize", pi.jited_prog_len);
  o.Set("xlatedSize", pi.xlated_prog_len);
  o.Set("loadTime", Big(env, pi.load_time));
  // load_time counts from boot (CLOCK_BOOTTIME); this offset turns it into
  // wall-clock time, read as close together as we can.
  int64_t real = ClockNs(CLOCK_REALTIME), boot = ClockNs(CLOCK_BOOTTIME);
  o.Set("realtimeMinusBoottime", Napi::BigInt::New(env, real - boot));
  o.Set("uid", pi.created_by_uid);
  Napi::Array ids = Napi::Array::New(env, mapIds.size());
  for (size_t i = 0; i < mapIds.size(); i++) ids.Set(i, mapIds[i]);
  o.Set("mapIds", ids);
  o.Set("name", std::string(pi.name, strnlen(pi.name, sizeof(pi.name))));
  o.Set("ifindex", pi.ifindex);
  o.Set("gplCompatible", pi.gpl_compatible != 0);
  if (HAVE(len, bpf_prog_info, netns_ino)) {
    o.Set("netnsDev", Big(env, pi.netns_dev));
    o.Set("netnsIno", Big(env, pi.netns_ino));
  }
  if (HAVE(len, bpf_prog_info, btf_id)) o.Set("btfId", pi.btf_id);
  if (HAVE(len, bpf_prog_info, run_cnt)) {
    o.Set("runTimeNs", Big(env, pi.run_time_ns));
    o.Set("runCount", Big(env, pi.run_cnt));
  }
  if (HAVE(len, bpf_prog_info, recursion_misses)) o.Set("recursionMisses", Big(env, pi.recursion_misses));
  if (HAVE(len, bpf_prog_info, verified_insns)) o.Set("verifiedInsns", pi.verified_insns);
  if (HAVE(len, bpf_prog_info, attach_btf_obj_id)) o.Set("attachBtfObjId", pi.attach_btf_obj_id);
  if (HAVE(len, bpf_prog_info, attach_btf_id)) o.Set("attachBtfId", pi.attach_btf_id);
  return o;
}

// progInsns(fd, jited): the translated (xlated) instructions or the JIT's
// machine code, as bytes. Needs CAP_SYS_ADMIN (and kptr_restrict allowing
// it) or the kernel reports a length of 0.
Napi::Value ProgInsns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  bool jited = info[1].ToBoolean();
  bpf_prog_info pi{};
  __u32 len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
  __u32 size = jited ? pi.jited_prog_len : pi.xlated_prog_len;
  std::vector<uint8_t> bytes(size);
  if (size > 0) {
    bpf_prog_info again{};
    __u32 len2 = sizeof(again);
    if (jited) {
      again.jited_prog_len = size;
      again.jited_prog_insns = reinterpret_cast<uintptr_t>(bytes.data());
    } else {
      again.xlated_prog_len = size;
      again.xlated_prog_insns = reinterpret_cast<uintptr_t>(bytes.data());
    }
    if (bpf_obj_get_info_by_fd(fd, &again, &len2) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
    bytes.resize(std::min(size, jited ? again.jited_prog_len : again.xlated_prog_len));
  }
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

// mapInfo(fd): bpf_map_info.
Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  bpf_map_info mi{};
  __u32 len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", mi.type);
  o.Set("id", mi.id);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  o.Set("name", std::string(mi.name, strnlen(mi.name, sizeof(mi.name))));
  o.Set("ifindex", mi.ifindex);
  if (HAVE(len, bpf_map_info, netns_ino)) {
    o.Set("netnsDev", Big(env, mi.netns_dev));
    o.Set("netnsIno", Big(env, mi.netns_ino));
  }
  if (HAVE(len, bpf_map_info, btf_value_type_id)) {
    o.Set("btfId", mi.btf_id);
    o.Set("btfKeyTypeId", mi.btf_key_type_id);
    o.Set("btfValueTypeId", mi.btf_value_type_id);
  }
  if (HAVE(len, bpf_map_info, btf_vmlinux_value_type_id)) o.Set("btfVmlinuxValueTypeId", mi.btf_vmlinux_value_type_id);
  if (HAVE(len, bpf_map_info, map_extra)) o.Set("mapExtra", Big(env, mi.map_extra));
  return o;
}

// The kernel's struct bpf_link_info as raw bytes: its per-type union grew
// with every kernel (tcx, netkit, perf_event, ...) and libbpf 1.1's uapi
// copy lacks most of them, so ts/ decodes the union from known offsets.
// 256 bytes is more than any kernel's struct so far; the tail must be zero.
constexpr size_t kLinkInfoRoom = 256;
constexpr size_t kLinkUnion = 16;  // type, id, prog_id, then the union (8-aligned)

struct alignas(8) RawLinkInfo {
  uint8_t bytes[kLinkInfoRoom];
};

template <typename T>
void Put(RawLinkInfo& r, size_t off, T v) { memcpy(r.bytes + kLinkUnion + off, &v, sizeof(v)); }
template <typename T>
T Get(const RawLinkInfo& r, size_t off) {
  T v;
  memcpy(&v, r.bytes + kLinkUnion + off, sizeof(v));
  return v;
}

// linkInfo(fd): {raw: Buffer (the whole struct as the kernel filled it), name?}
// name: the one string some link types carry (a raw tracepoint's name, an
// iterator's target, a perf event's tracepoint, function or file).
Napi::Value LinkInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0);
  RawLinkInfo r{};
  __u32 len = sizeof(r);
  if (bpf_obj_get_info_by_fd(fd, &r, &len) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
  uint32_t type;
  memcpy(&type, r.bytes, sizeof(type));
  // Where the name pointer and its length are in the union, per type.
  size_t ptrOff = SIZE_MAX, lenOff = 0;
  if (type == 1 /* RAW_TRACEPOINT */ || type == 4 /* ITER */) {
    ptrOff = 0;
    lenOff = 8;
  } else if (type == 7 /* PERF_EVENT */) {
    uint32_t pt = Get<uint32_t>(r, 0);
    if (pt >= 1 && pt <= 5) {  // uprobe, uretprobe, kprobe, kretprobe, tracepoint
      ptrOff = 8;
      lenOff = 16;
    }
  } else if (type == 12 /* UPROBE_MULTI */) {
    ptrOff = 0;
    lenOff = 32;
  }
  Napi::Object o = Napi::Object::New(env);
  if (ptrOff != SIZE_MAX) {
    char name[4096] = {0};
    RawLinkInfo again{};
    if (type == 7) Put<uint32_t>(again, 0, Get<uint32_t>(r, 0));
    Put<uint64_t>(again, ptrOff, reinterpret_cast<uintptr_t>(name));
    Put<uint32_t>(again, lenOff, sizeof(name));
    __u32 len2 = sizeof(again);
    if (bpf_obj_get_info_by_fd(fd, &again, &len2) == 0) {
      name[sizeof(name) - 1] = '\0';
      o.Set("name", std::string(name));
      r = again;
      len = len2;
      // Our pointers are nobody's business in ts/.
      Put<uint64_t>(r, ptrOff, 0);
    }
  }
  o.Set("raw", Napi::Buffer<uint8_t>::Copy(env, r.bytes, len));
  return o;
}

// enableStats(): an fd that keeps BPF_STATS_RUN_TIME on while open.
Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) ThrowErrno(env, errno, "bpf_enable_stats");
  return Napi::Number::New(env, fd);
}

Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  close(FdArg(info, 0));
  return info.Env().Undefined();
}

// nextId(kind, start): the next id of that kind after `start`, 0 at the end.
Napi::Value NextId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  __u32 start = U32Arg(info, 1), next = 0;
  int err;
  const char* op;
  if (kind == "prog") {
    op = "bpf_prog_get_next_id";
    err = bpf_prog_get_next_id(start, &next);
  } else if (kind == "map") {
    op = "bpf_map_get_next_id";
    err = bpf_map_get_next_id(start, &next);
  } else if (kind == "link") {
    op = "bpf_link_get_next_id";
    err = bpf_link_get_next_id(start, &next);
  } else {
    op = "bpf_btf_get_next_id";
    err = bpf_btf_get_next_id(start, &next);
  }
  if (err != 0) {
    if (errno == ENOENT) return Napi::Number::New(env, 0);
    ThrowErrno(env, errno, op);
  }
  return Napi::Number::New(env, next);
}

// linkFromId(id): a NativeLink owning an fd of that kernel link; null when
// the link is gone (ENOENT), so a walk can skip it.
Napi::Value LinkFromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = U32Arg(info, 0);
  int fd = bpf_link_get_fd_by_id(id);
  if (fd < 0) {
    if (errno == ENOENT && info[1].ToBoolean()) return env.Null();
    ThrowErrno(env, errno, "bpf_link_get_fd_by_id", "link id " + std::to_string(id));
  }
  Attachment a;
  a.kind = Attachment::kFd;
  a.fd = fd;
  return Link::New(env, a);
}

// linkDetach(fd): BPF_LINK_DETACH; the link stays, attached to nothing.
Napi::Value LinkDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (bpf_link_detach(FdArg(info, 0)) != 0) ThrowErrno(env, errno, "bpf_link_detach", info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "");
  return env.Undefined();
}

// progQuery(targetFd | ifindex, attachType, target): BPF_PROG_QUERY's
// program ids (and link ids where the kernel has them) with the attach flags.
Napi::Value ProgQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int target = FdArg(info, 0);
  auto type = static_cast<bpf_attach_type>(U32Arg(info, 1));
  std::string what = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
  std::vector<__u32> ids(64), attachFlags(64);
  bool withFlags = true;
  for (;;) {
    DECLARE_LIBBPF_OPTS(bpf_prog_query_opts, o);
    o.prog_ids = ids.data();
    o.prog_cnt = ids.size();
    // Kernels before 6.0 reject a query that asks for per-program flags.
    if (withFlags) o.prog_attach_flags = attachFlags.data();
    if (bpf_prog_query_opts(target, type, &o) != 0) {
      if (errno == EINVAL && withFlags) {
        withFlags = false;
        continue;
      }
      if (errno == ENOSPC && ids.size() < 65536) {
        ids.resize(ids.size() * 4);
        attachFlags.resize(ids.size());
        continue;
      }
      ThrowErrno(env, errno, "bpf_prog_query_opts", what);
    }
    Napi::Object r = Napi::Object::New(env);
    r.Set("attachFlags", o.attach_flags);
    Napi::Array a = Napi::Array::New(env, o.prog_cnt);
    Napi::Array f = Napi::Array::New(env, o.prog_cnt);
    for (uint32_t i = 0; i < o.prog_cnt && i < ids.size(); i++) {
      a.Set(i, ids[i]);
      f.Set(i, withFlags ? attachFlags[i] : 0);
    }
    r.Set("progIds", a);
    r.Set("progAttachFlags", f);
    return r;
  }
}

// xdpQuery(ifindex): the XDP programs of an interface, per mode (0: none).
Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = FdArg(info, 0);
  DECLARE_LIBBPF_OPTS(bpf_xdp_query_opts, o);
  LogCapture cap;
  int err = bpf_xdp_query(ifindex, 0, &o);
  if (err) ThrowErrno(env, err, "bpf_xdp_query", "ifindex " + std::to_string(ifindex), cap.take());
  Napi::Object r = Napi::Object::New(env);
  r.Set("mode", o.attach_mode);
  r.Set("progId", o.prog_id);
  r.Set("drvProgId", o.drv_prog_id);
  r.Set("skbProgId", o.skb_prog_id);
  r.Set("hwProgId", o.hw_prog_id);
  return r;
}

// clockOffset(): CLOCK_REALTIME - CLOCK_BOOTTIME in ns (trace_pipe and
// bpf_prog_info speak boot time).
Napi::Value ClockOffset(const Napi::CallbackInfo& info) {
  int64_t real = ClockNs(CLOCK_REALTIME), boot = ClockNs(CLOCK_BOOTTIME);
  return Napi::BigInt::New(info.Env(), real - boot);
}

}  // namespace

void InitInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("progInfo", Napi::Function::New<ProgInfo>(env, "progInfo"));
  exports.Set("progInsns", Napi::Function::New<ProgInsns>(env, "progInsns"));
  exports.Set("mapInfo", Napi::Function::New<MapInfo>(env, "mapInfo"));
  exports.Set("linkInfo", Napi::Function::New<LinkInfo>(env, "linkInfo"));
  exports.Set("enableStats", Napi::Function::New<EnableStats>(env, "enableStats"));
  exports.Set("closeFd", Napi::Function::New<CloseFd>(env, "closeFd"));
  exports.Set("nextId", Napi::Function::New<NextId>(env, "nextId"));
  exports.Set("linkFromId", Napi::Function::New<LinkFromId>(env, "linkFromId"));
  exports.Set("linkDetach", Napi::Function::New<LinkDetach>(env, "linkDetach"));
  exports.Set("progQuery", Napi::Function::New<ProgQuery>(env, "progQuery"));
  exports.Set("xdpQuery", Napi::Function::New<XdpQuery>(env, "xdpQuery"));
  exports.Set("clockOffset", Napi::Function::New<ClockOffset>(env, "clockOffset"));
}

}  // namespace glue
