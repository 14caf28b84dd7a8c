// struct_ops maps (tcp_congestion_ops, ...): bpf_map__attach_struct_ops
// registers the map's value with the kernel subsystem. libbpf makes a
// kernel link of it where the map has BPF_F_LINK (libbpf 1.2+,
// SEC(".struct_ops.link"), Linux 6.4+); otherwise the registration lasts
// until the map's element is deleted, which the link's destroy does (and
// which outlives the process unless done: ts/ releases it on exit).
#include "glue.h"

#include <cerrno>

namespace glue {

Napi::Value Map::AttachStructOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "attachStructOps() needs a map of a BpfObject");
  bpf_map* m = Owned(env, true);
  int fd = Fd(env);
  bpf_map_info mi;
  uint32_t mapId = InfoByFd(fd, mi) == 0 ? mi.id : 0;
  LogCapture cap;
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
