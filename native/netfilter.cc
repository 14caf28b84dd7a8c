// Netfilter programs (BPF_PROG_TYPE_NETFILTER, Linux 6.4) on a netfilter
// hook: a kernel link made with BPF_LINK_CREATE. libbpf's bpf_link_create
// learnt the netfilter fields in 1.2; Debian 12's 1.1 passes only the
// common ones, so the attribute is laid out here, as the uapi has it.
#include "glue.h"

#include <sys/syscall.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace glue {

namespace {
// union bpf_attr's link_create, up to its netfilter member (uapi bpf.h,
// Linux 6.4): the kernel takes a shorter attribute as zero-filled.
struct LinkCreateNetfilter {
  uint32_t progFd;
  uint32_t targetFd;
  uint32_t attachType;
  uint32_t flags;
  uint32_t pf;
  uint32_t hooknum;
  int32_t priority;
  uint32_t nfFlags;
};
static_assert(sizeof(LinkCreateNetfilter) == 32, "link_create.netfilter ends at byte 32");

constexpr uint32_t kBpfNetfilter = 45;  // BPF_NETFILTER in enum bpf_attach_type
}  // namespace

// attachNetfilter(pf, hooknum, priority, flags, target)
Napi::Value Program::AttachNetfilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LinkCreateNetfilter attr;
  memset(&attr, 0, sizeof(attr));
  attr.progFd = static_cast<uint32_t>(Fd(env));
  attr.attachType = kBpfNetfilter;
  attr.pf = info[0].As<Napi::Number>().Uint32Value();
  attr.hooknum = info[1].As<Napi::Number>().Uint32Value();
  attr.priority = info[2].As<Napi::Number>().Int32Value();
  attr.nfFlags = info[3].As<Napi::Number>().Uint32Value();
  std::string target = info[4].IsString() ? info[4].As<Napi::String>().Utf8Value() : std::string();
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr)));
  if (fd < 0) ThrowErrno(env, errno, "bpf_link_create", target + " (program " + Name() + ")");
  Attachment a;
  a.kind = Attachment::kFd;
  a.fd = fd;
  return Link::New(env, a);
}

}  // namespace glue
