// Attachments. Most are kernel links (from libbpf, or made here with
// bpf_link_create); some older hooks are not (SO_ATTACH_BPF, XDP through
// netlink, tc filters, bpf_prog_attach), and the link records how to undo
// each.
#include "glue.h"

#include <linux/if_link.h>
#include <sys/socket.h>
#include <cerrno>
#include <unistd.h>

namespace glue {

Napi::Function Link::Init(Napi::Env env) {
  return DefineClass(env, "NativeLink",
                     {
                         StaticMethod<&Link::FromPin>("fromPin"),
                         InstanceMethod<&Link::Info>("info"),
                         InstanceMethod<&Link::Pin>("pin"),
                         InstanceMethod<&Link::Unpin>("unpin"),
                         InstanceMethod<&Link::Update>("update"),
                         InstanceMethod<&Link::IterFd>("iterFd"),
                         InstanceMethod<&Link::Detach>("detach"),
                     });
}

Link::Link(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Link>(info) {
  if (!info[0].IsExternal())
    ThrowState(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "NativeLink is made by the library");
  a_ = *info[0].As<Napi::External<Attachment>>().Data();
  live_ = true;
}

// A link that is garbage collected without detach() is released here; the
// TypeScript layer keeps every attached link reachable from its owner until
// it is detached, so this runs for links the user let go of on purpose.
Link::~Link() { Release(); }

bool Link::Release() {
  if (!live_) return false;
  live_ = false;
  bool ok = true;
  switch (a_.kind) {
    case Attachment::kLibbpf:
    case Attachment::kUsdt:  // libbpf destroys its uprobes; it closes no fd of the USDT link itself
    case Attachment::kStructOps:  // closes the kernel link, or deletes the map's element
      bpf_link__destroy(a_.link);
      break;
    case Attachment::kFd:
      close(a_.fd);
      break;
    case Attachment::kSocket:
      setsockopt(a_.fd, SOL_SOCKET, SO_DETACH_BPF, &a_.progFd, sizeof(a_.progFd));
      close(a_.fd);
      break;
    case Attachment::kXdpNetlink: {
      // Only if our program is still the one attached.
      DECLARE_LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = a_.progFd);
      bpf_xdp_detach(a_.ifindex, a_.flags | XDP_FLAGS_REPLACE, &o);
      close(a_.progFd);
      break;
    }
    case Attachment::kTc: {
      DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a_.ifindex,
                          .attach_point = static_cast<bpf_tc_attach_point>(a_.tcParent));
      DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .handle = a_.handle, .priority = a_.priority);
      ok = bpf_tc_detach(&hook, &o) == 0;
      close(a_.progFd);
      break;
    }
    case Attachment::kProgAttach:
      bpf_prog_detach2(a_.progFd, a_.targetFd, static_cast<bpf_attach_type>(a_.attachType));
      close(a_.progFd);
      close(a_.targetFd);
      break;
  }
  return ok;
}

Napi::Object Link::New(Napi::Env env, const Attachment& a) {
  Attachment copy = a;
  return Data(env).linkCtor.New({Napi::External<Attachment>::New(env, &copy)});
}

Napi::Object Link::FromLibbpf(Napi::Env env, bpf_link* link, bool usdt, uint32_t progId) {
  Attachment a;
  a.kind = usdt ? Attachment::kUsdt : Attachment::kLibbpf;
  a.link = link;
  a.progId = progId;
  return New(env, a);
}

Napi::Value Link::FromPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  // bpf_link__open takes any pinned object; a map or a program is no link.
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "bpf_obj_get", path);
  std::string kind = FdKind(fd);
  close(fd);
  if (kind != "bpf_link" && kind != "bpf-link") ThrowErrno(env, EINVAL, "bpf_link__open", path + " is not a pinned link (it is a " + (kind.empty() ? "file" : kind) + ")");
  LogCapture cap;
  bpf_link* link = bpf_link__open(path.c_str());
  if (link == nullptr) ThrowErrno(env, errno, "bpf_link__open", path, cap.take());
  return FromLibbpf(env, link);
}

// The fd of the kernel link, for the operations only kernel links have.
int Link::KernelFd(Napi::Env env, const char* op, const std::string& target) {
  if (!live_) ThrowState(env, "ERR_INVALID_STATE", "BpfLink is detached");
  if (a_.kind == Attachment::kLibbpf) return bpf_link__fd(a_.link);
  if (a_.kind == Attachment::kFd) return a_.fd;
  if (a_.kind == Attachment::kStructOps) {
    int fd = bpf_link__fd(a_.link);
    std::string kind = FdKind(fd);
    if (kind == "bpf_link" || kind == "bpf-link") return fd;
    ThrowErrno(env, EOPNOTSUPP, op, target,
               "this struct_ops map is registered without a kernel link, so there is no link to pin, update or "
               "query: struct_ops links need a map made with BPF_F_LINK (Linux 6.4+): SEC(\".struct_ops.link\") with "
               "libbpf 1.2+, or map.flags |= 1 << 13 before load\n");
  }
  if (a_.kind == Attachment::kUsdt)
    ThrowErrno(env, EOPNOTSUPP, op, target,
               "a USDT attachment is no single kernel link: libbpf makes it of one uprobe per probe site (or of a "
               "uprobe.multi link it keeps to itself), so it has no fd to pin, update or query; keep the process "
               "that attached it alive, or pin the program and attach it again\n");
  ThrowErrno(env, EOPNOTSUPP, op, target,
             "this attachment is not a kernel link (socket filter, netlink XDP, tc filter or prog_attach)\n");
}

Napi::Value Link::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!live_) ThrowState(env, "ERR_INVALID_STATE", "BpfLink is detached");
  static const char* kinds[] = {"link", "link", "socket", "xdp_netlink", "tc", "prog_attach", "usdt", "struct_ops"};
  Napi::Object o = Napi::Object::New(env);
  o.Set("kind", kinds[a_.kind]);
  int fd = a_.kind == Attachment::kLibbpf ? bpf_link__fd(a_.link) : a_.kind == Attachment::kFd ? a_.fd : -1;
  if (a_.kind == Attachment::kStructOps) {
    // A kernel link (BPF_F_LINK maps) describes itself; a registration
    // without one has only the map (its fd is the map's, not a link's).
    int lfd = bpf_link__fd(a_.link);
    std::string kind = FdKind(lfd);
    if (kind == "bpf_link" || kind == "bpf-link") {
      fd = lfd;
      o.Set("kind", "link");
    }
    o.Set("mapId", a_.mapId);
  }
  o.Set("fd", fd);
  int progFd = a_.progFd;
  // Links made by perf_event_open (kprobes on kernels before 5.15) have no
  // kernel link object: their fd is the perf event's, bpf_obj_get_info_by_fd
  // fails on it, and the program's id is the one noted at attach time.
  bpf_link_info li;
  if (fd >= 0 && InfoByFd(fd, li) == 0) {
    o.Set("id", li.id);
    o.Set("type", li.type);
    o.Set("progId", li.prog_id);
  } else if (progFd >= 0) {
    bpf_prog_info pi;
    if (InfoByFd(progFd, pi) == 0) o.Set("progId", pi.id);
  } else if (a_.progId != 0) {
    o.Set("progId", a_.progId);
  }
  if (a_.ifindex) o.Set("ifindex", a_.ifindex);
  if (a_.kind == Attachment::kTc) o.Set("hookCreated", a_.hookCreated);
  return o;
}

Napi::Value Link::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = KernelFd(env, "bpf_link__pin", path);
  LogCapture cap;
  int err = a_.kind == Attachment::kLibbpf ? bpf_link__pin(a_.link, path.c_str())
                                           : (bpf_obj_pin(fd, path.c_str()) ? -errno : 0);
  if (err) ThrowErrno(env, err, "bpf_link__pin", path, cap.take());
  return env.Undefined();
}

Napi::Value Link::Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  KernelFd(env, "bpf_link__unpin");
  if (a_.kind != Attachment::kLibbpf) ThrowErrno(env, EINVAL, "bpf_link__unpin", "unlink the pin's path instead");
  int err = bpf_link__unpin(a_.link);
  if (err) ThrowErrno(env, err, "bpf_link__unpin");
  return env.Undefined();
}

// update(newProgFd, target): the link runs another program
// (BPF_LINK_UPDATE); `target` names link and program in errors.
Napi::Value Link::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = KernelFd(env, "bpf_link_update");
  int prog = info[0].As<Napi::Number>().Int32Value();
  if (bpf_link_update(fd, prog, nullptr) != 0)
    ThrowErrno(env, errno, "bpf_link_update", info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "");
  return env.Undefined();
}

// A new fd whose reads run the iterator (bpf_iter_create); the caller owns it.
Napi::Value Link::IterFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = bpf_iter_create(KernelFd(env, "bpf_iter_create"));
  if (fd < 0) ThrowErrno(env, errno, "bpf_iter_create");
  return Napi::Number::New(env, fd);
}

// detach(): whether this call undid the attachment (false when already
// detached, or when the kernel no longer had it: a tc filter whose
// interface or qdisc went away).
Napi::Value Link::Detach(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Release());
}

}  // namespace glue
