// Attachments: a libbpf bpf_link, or a socket filter set with SO_ATTACH_BPF
// (which the kernel does not model as a link).
#include "glue.h"

#include <sys/socket.h>
#include <cerrno>
#include <unistd.h>

namespace glue {

namespace {
struct LinkInit {
  bpf_link* link = nullptr;
  int sock = -1;
  int progFd = -1;
};
}  // namespace

Napi::Function Link::Init(Napi::Env env) {
  return DefineClass(env, "NativeLink",
                     {
                         StaticMethod<&Link::FromPin>("fromPin"),
                         InstanceMethod<&Link::Info>("info"),
                         InstanceMethod<&Link::Pin>("pin"),
                         InstanceMethod<&Link::Unpin>("unpin"),
                         InstanceMethod<&Link::Detach>("detach"),
                     });
}

Link::Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
  if (!info[0].IsExternal())
    ThrowState(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "NativeLink is made by the library");
  LinkInit* init = info[0].As<Napi::External<LinkInit>>().Data();
  link_ = init->link;
  sock_ = init->sock;
  progFd_ = init->progFd;
}

// A link that is garbage collected without detach() is released here; the
// TypeScript layer keeps every attached link reachable from its owner until
// it is detached, so this runs for links the user let go of on purpose.
Link::~Link() { Release(); }

void Link::Release() {
  if (link_ != nullptr) bpf_link__destroy(link_);
  link_ = nullptr;
  if (sock_ >= 0) {
    setsockopt(sock_, SOL_SOCKET, SO_DETACH_BPF, &progFd_, sizeof(progFd_));
    close(sock_);
  }
  sock_ = -1;
}

Napi::Object Link::FromLibbpf(Napi::Env env, bpf_link* link) {
  LinkInit init;
  init.link = link;
  return Data(env).linkCtor.New({Napi::External<LinkInit>::New(env, &init)});
}

Napi::Object Link::FromSocket(Napi::Env env, int sockDup, int progFd) {
  LinkInit init;
  init.sock = sockDup;
  init.progFd = progFd;
  return Data(env).linkCtor.New({Napi::External<LinkInit>::New(env, &init)});
}

Napi::Value Link::FromPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  LogCapture cap;
  bpf_link* link = bpf_link__open(path.c_str());
  if (link == nullptr) ThrowErrno(env, errno, "bpf_link__open", path, cap.take());
  return FromLibbpf(env, link);
}

Napi::Value Link::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  if (sock_ >= 0) {
    o.Set("kind", "socket");
    o.Set("fd", -1);
    bpf_prog_info pi;
    if (InfoByFd(progFd_, pi) == 0) o.Set("progId", pi.id);
    return o;
  }
  if (link_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "BpfLink is detached");
  int fd = bpf_link__fd(link_);
  o.Set("kind", "link");
  o.Set("fd", fd);
  // Links made by perf_event_open (kprobes on old kernels) have no kernel
  // link object; bpf_obj_get_info_by_fd then fails and only fd is known.
  bpf_link_info li;
  if (fd >= 0 && InfoByFd(fd, li) == 0) {
    o.Set("id", li.id);
    o.Set("type", li.type);
    o.Set("progId", li.prog_id);
  }
  return o;
}

Napi::Value Link::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (sock_ >= 0)
    ThrowErrno(env, EOPNOTSUPP, "bpf_link__pin", "a socket filter attachment is not a kernel link");
  if (link_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "BpfLink is detached");
  LogCapture cap;
  int err = bpf_link__pin(link_, path.c_str());
  if (err) ThrowErrno(env, err, "bpf_link__pin", path, cap.take());
  return env.Undefined();
}

Napi::Value Link::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (link_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "BpfLink is detached");
  int err = bpf_link__unpin(link_);
  if (err) ThrowErrno(env, err, "bpf_link__unpin");
  return env.Undefined();
}

Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

}  // namespace glue
