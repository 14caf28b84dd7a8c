// struct_ops maps (tcp_congestion_ops, ...): bpf_map__attach_struct_ops
// registers the map's value with the kernel subsystem. libbpf makes a
// kernel link of it where the map has BPF_F_LINK (libbpf 1.2+,
// SEC(".struct_ops.link"), Linux 6.4+); otherwise the registration lasts
// until the map's element is deleted, which the link's destroy does (and
// which outlives the process unless done: ts/ releases it on exit).
#include "glue.h"

#include <cerrno>

namespace glue {

namespace {
// Newer than the uapi headers of Debian 12 (Linux 6.1).
constexpr uint32_t kBpfFLink = 1u << 13;  // BPF_F_LINK (Linux 6.4)
constexpr uint32_t kBpfStructOps = 44;    // BPF_STRUCT_OPS in enum bpf_attach_type
}  // namespace

Napi::Value Map::AttachStructOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "attachStructOps() needs a map of a BpfObject");
  bpf_map* m = Owned(env, true);
  int fd = Fd(env);
  bpf_map_info mi;
  uint32_t mapId = InfoByFd(fd, mi) == 0 ? mi.id : 0;
  LogCapture cap;
#if LIBBPF_MAJOR_VERSION == 1 && LIBBPF_MINOR_VERSION < 2
  // libbpf 1.1 knows no struct_ops links: for a map made with BPF_F_LINK
  // (Linux 6.4; set before load) its update only readies the value, and the
  // kernel link that registers it is made here, as libbpf 1.2+ does. The
  // value is set once: EBUSY says an earlier attach readied it, and the map
  // can be linked again (libbpf 1.3+ skips that EBUSY too).
  if (bpf_map__map_flags(m) & kBpfFLink) {
    bpf_link* ready = bpf_map__attach_struct_ops(m);
    int err = errno;
    if (ready != nullptr) {
      bpf_link__disconnect(ready);  // its detach would delete the element: not how links end
      bpf_link__destroy(ready);
    } else if (err != EBUSY) {
      ThrowErrno(env, err, "bpf_map__attach_struct_ops", std::string("map ") + bpf_map__name(m), cap.take());
    }
    int lfd = bpf_link_create(fd, 0, static_cast<bpf_attach_type>(kBpfStructOps), nullptr);
    if (lfd < 0) {
      err = errno;
      ThrowErrno(env, err, "bpf_link_create", std::string("struct_ops map ") + bpf_map__name(m), cap.take());
    }
    Attachment a;
    a.kind = Attachment::kFd;
    a.fd = lfd;
    return Link::New(env, a);
  }
#endif
  bpf_link* link = bpf_map__attach_struct_ops(m);
  if (link == nullptr) {
    int err = errno;
    ThrowErrno(env, err, "bpf_map__attach_struct_ops", std::string("map ") + bpf_map__name(m), cap.take());
  }
  Attachment a;
  a.kind = Attachment::kStructOps;
  a.link = link;
  a.mapId = mapId;
  return Link::New(env, a);
}

}  // namespace glue
