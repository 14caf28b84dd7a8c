// BpfProgram's attach methods: one per kind of hook. Those that go through
// libbpf need a program of an object; those made from the program's fd
// (bpf_link_create, netlink, bpf_prog_attach) work for any program. Every
// failure names its target.
#include "glue.h"

#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace glue {

namespace {
std::string Str(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }
uint32_t U32(const Napi::Value& v) { return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : 0; }
int32_t I32(const Napi::Value& v, int32_t dflt) { return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : dflt; }
}  // namespace

std::string Program::Name() { return owner_ ? bpf_program__name(owner_->progs[index_]) : name_; }

// A dup of the program's fd, for attachments that must outlive the program.
int Program::DupFd(Napi::Env env) {
  int fd = fcntl(Fd(env), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, errno, "fcntl(F_DUPFD)", Name());
  return fd;
}

Napi::Object Program::Libbpf(Napi::Env env, bpf_link* link, const char* op, const std::string& target,
                             LogCapture& cap, bool usdt) {
  if (link == nullptr) {
    int err = errno;
    ThrowErrno(env, err, op, target + " (program " + Name() + ")", cap.take());
  }
  // The program's id, for links the kernel cannot describe (USDT, perf
  // events attached by ioctl on kernels before 5.15).
  bpf_prog_info pi;
  uint32_t progId = 0;
  try {
    if (InfoByFd(Fd(env), pi) == 0) progId = pi.id;
  } catch (...) {
    bpf_link__destroy(link);
    throw;
  }
  return Link::FromLibbpf(env, link, usdt, progId);
}

#define LOADED_PROGRAM(what)                                                                    \
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", what " needs a program of a BpfObject");   \
  bpf_program* p = Owned(env, true);                                                           \
  Fd(env);                                                                                      \
  LogCapture cap

Napi::Value Program::Attach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attach()");
  // SEC("usdt/...") attaches as attachUsdt() does: a USDT link.
  const char* sec = bpf_program__section_name(p);
  bool usdt = strncmp(sec, "usdt", 4) == 0 && (sec[4] == '/' || sec[4] == '\0' || strncmp(sec + 4, ".s/", 3) == 0);
  return Libbpf(env, bpf_program__attach(p), "bpf_program__attach", sec, cap, usdt);
}

// attachKprobe(func, retprobe, offset)
Napi::Value Program::AttachKprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachKprobe()");
  std::string func = Str(info[0]);
  DECLARE_LIBBPF_OPTS(bpf_kprobe_opts, o, .offset = U32(info[2]), .retprobe = info[1].ToBoolean());
  return Libbpf(env, bpf_program__attach_kprobe_opts(p, func.c_str(), &o), "bpf_program__attach_kprobe_opts", func, cap);
}

// attachKsyscall(name, retprobe)
Napi::Value Program::AttachKsyscall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachKsyscall()");
  std::string name = Str(info[0]);
  DECLARE_LIBBPF_OPTS(bpf_ksyscall_opts, o, .retprobe = info[1].ToBoolean());
  return Libbpf(env, bpf_program__attach_ksyscall(p, name.c_str(), &o), "bpf_program__attach_ksyscall", name, cap);
}

// attachKprobeMulti(pattern | null, symbols[] | null, retprobe)
Napi::Value Program::AttachKprobeMulti(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachKprobeMulti()");
  std::string pattern = Str(info[0]);
  std::vector<std::string> syms;
  std::vector<const char*> ptrs;
  if (info[1].IsArray()) {
    Napi::Array a = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) syms.push_back(Str(a.Get(i)));
    for (auto& s : syms) ptrs.push_back(s.c_str());
  }
  DECLARE_LIBBPF_OPTS(bpf_kprobe_multi_opts, o, .syms = ptrs.empty() ? nullptr : ptrs.data(),
                      .cnt = ptrs.size(), .retprobe = info[2].ToBoolean());
  std::string target = pattern.empty() ? std::to_string(ptrs.size()) + " symbols" : pattern;
  return Libbpf(env, bpf_program__attach_kprobe_multi_opts(p, pattern.empty() ? nullptr : pattern.c_str(), &o),
                "bpf_program__attach_kprobe_multi_opts", target, cap);
}

// attachUprobe(binary, func | null, offset, pid, retprobe)
Napi::Value Program::AttachUprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachUprobe()");
  std::string binary = Str(info[0]), func = Str(info[1]);
  DECLARE_LIBBPF_OPTS(bpf_uprobe_opts, o, .retprobe = info[4].ToBoolean(),
                      .func_name = func.empty() ? nullptr : func.c_str());
  size_t offset = info[2].IsNumber() ? static_cast<size_t>(info[2].As<Napi::Number>().Int64Value()) : 0;
  return Libbpf(env, bpf_program__attach_uprobe_opts(p, I32(info[3], -1), binary.c_str(), offset, &o),
                "bpf_program__attach_uprobe_opts", binary + (func.empty() ? "" : ":" + func), cap);
}

// attachUsdt(binary, provider, name, pid, cookie)
Napi::Value Program::AttachUsdt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachUsdt()");
  std::string binary = Str(info[0]), provider = Str(info[1]), name = Str(info[2]);
  bool lossless = true;
  DECLARE_LIBBPF_OPTS(bpf_usdt_opts, o,
                      .usdt_cookie = info[4].IsBigInt() ? info[4].As<Napi::BigInt>().Uint64Value(&lossless) : 0);
  return Libbpf(env, bpf_program__attach_usdt(p, I32(info[3], -1), binary.c_str(), provider.c_str(), name.c_str(), &o),
                "bpf_program__attach_usdt", binary + ":" + provider + ":" + name, cap, true);
}

Napi::Value Program::AttachTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachTracepoint()");
  std::string category = Str(info[0]), name = Str(info[1]);
  return Libbpf(env, bpf_program__attach_tracepoint(p, category.c_str(), name.c_str()),
                "bpf_program__attach_tracepoint", category + "/" + name, cap);
}

Napi::Value Program::AttachRawTracepoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachRawTracepoint()");
  std::string name = Str(info[0]);
  return Libbpf(env, bpf_program__attach_raw_tracepoint(p, name.c_str()), "bpf_program__attach_raw_tracepoint",
                name, cap);
}

// attachPerfEvent(perfFd): the link owns perfFd from here on, even on failure.
Napi::Value Program::AttachPerfEvent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pfd = I32(info[0], -1);
  bpf_link* link = nullptr;
  LogCapture cap;
  try {
    if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "attachPerfEvent() needs a program of a BpfObject");
    bpf_program* p = Owned(env, true);
    Fd(env);
    link = bpf_program__attach_perf_event(p, pfd);
  } catch (...) {
    close(pfd);
    throw;
  }
  if (link == nullptr) {
    int err = errno;
    close(pfd);
    errno = err;
  }
  return Libbpf(env, link, "bpf_program__attach_perf_event", "perf event fd " + std::to_string(pfd), cap);
}

// attachXdp(ifindex, flags): through netlink, the way to replace whatever
// program the interface runs (a link would be refused while one is there).
Napi::Value Program::AttachXdp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment a;
  a.kind = Attachment::kXdpNetlink;
  a.ifindex = I32(info[0], 0);
  a.flags = U32(info[1]);
  a.progFd = DupFd(env);
  LogCapture cap;
  int err = bpf_xdp_attach(a.ifindex, a.progFd, a.flags, nullptr);
  if (err) {
    close(a.progFd);
    ThrowErrno(env, err, "bpf_xdp_attach", "ifindex " + std::to_string(a.ifindex) + " (program " + Name() + ")",
               cap.take());
  }
  return Link::New(env, a);
}

// attachTc(ifindex, attachPoint, priority, handle): a tc filter on the
// interface's clsact qdisc, made when missing (the link says whether it
// made it: the TypeScript layer decides whether to remove it).
Napi::Value Program::AttachTc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment a;
  a.kind = Attachment::kTc;
  a.ifindex = I32(info[0], 0);
  a.tcParent = U32(info[1]);
  std::string target = "ifindex " + std::to_string(a.ifindex) + (a.tcParent == BPF_TC_INGRESS ? " ingress" : " egress");
  LogCapture cap;
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = static_cast<bpf_tc_attach_point>(a.tcParent));
  int err;
  {
    // EEXIST: the clsact qdisc is there already, which is fine; libbpf's
    // warning about it is no warning for the user (print.cc).
    LogCapture hookCap;
    err = bpf_tc_hook_create(&hook);
    if (err == -EEXIST) hookCap.take();
    else if (err) ThrowErrno(env, err, "bpf_tc_hook_create", target, hookCap.take());
  }
  a.hookCreated = err == 0;
  a.progFd = DupFd(env);
  DECLARE_LIBBPF_OPTS(bpf_tc_opts, o, .prog_fd = a.progFd, .handle = U32(info[3]), .priority = U32(info[2]));
  err = bpf_tc_attach(&hook, &o);
  if (err) {
    close(a.progFd);
    ThrowErrno(env, err, "bpf_tc_attach", target + " (program " + Name() + ")", cap.take());
  }
  a.handle = o.handle;
  a.priority = o.priority;
  return Link::New(env, a);
}

// attachLink(targetFd, attachType, flags, ifindex, target): a kernel link
// made with bpf_link_create (XDP, tcx, cgroup with an explicit type, ...);
// `target` names it in errors, `ifindex` is kept for interface hooks.
Napi::Value Program::AttachLink(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int target = I32(info[0], -1);
  uint32_t type = U32(info[1]);
  DECLARE_LIBBPF_OPTS(bpf_link_create_opts, o, .flags = U32(info[2]));
  LogCapture cap;
  int fd = bpf_link_create(Fd(env), target, static_cast<bpf_attach_type>(type), &o);
  if (fd < 0) {
    int err = errno;
    ThrowErrno(env, err, "bpf_link_create", Str(info[4]) + " (program " + Name() + ")", cap.take());
  }
  Attachment a;
  a.kind = Attachment::kFd;
  a.fd = fd;
  a.ifindex = I32(info[3], 0);
  return Link::New(env, a);
}

Napi::Value Program::AttachCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachCgroup()");
  return Libbpf(env, bpf_program__attach_cgroup(p, I32(info[0], -1)), "bpf_program__attach_cgroup", Str(info[1]), cap);
}

Napi::Value Program::AttachNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("attachNetns()");
  return Libbpf(env, bpf_program__attach_netns(p, I32(info[0], -1)), "bpf_program__attach_netns", Str(info[1]), cap);
}

// attachProg(targetFd, attachType, target): bpf_prog_attach, for hooks
// without links (sk_msg/sk_skb on a sockmap); `target` names it in errors.
Napi::Value Program::AttachProg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Attachment a;
  a.kind = Attachment::kProgAttach;
  a.attachType = U32(info[1]);
  a.targetFd = fcntl(I32(info[0], -1), F_DUPFD_CLOEXEC, 0);
  if (a.targetFd < 0) ThrowErrno(env, errno, "fcntl(F_DUPFD)", "target fd");
  a.progFd = DupFd(env);
  if (bpf_prog_attach(a.progFd, a.targetFd, static_cast<bpf_attach_type>(a.attachType), 0) != 0) {
    int err = errno;
    close(a.progFd);
    close(a.targetFd);
    ThrowErrno(env, err, "bpf_prog_attach", Str(info[2]) + " (program " + Name() + ")");
  }
  return Link::New(env, a);
}

// attachIter(mapFd | -1)
Napi::Value Program::AttachIter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LOADED_PROGRAM("iter()");
  union bpf_iter_link_info li = {};
  DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, o);
  int mapFd = I32(info[0], -1);
  if (mapFd >= 0) {
    li.map.map_fd = mapFd;
    o.link_info = &li;
    o.link_info_len = sizeof(li);
  }
  return Libbpf(env, bpf_program__attach_iter(p, &o), "bpf_program__attach_iter", bpf_program__section_name(p), cap);
}

Napi::Value Program::AttachSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int progFd = Fd(env);
  int sock = info[0].As<Napi::Number>().Int32Value();
  Attachment a;
  a.kind = Attachment::kSocket;
  a.progFd = progFd;
  a.fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  if (a.fd < 0) ThrowErrno(env, errno, "fcntl(F_DUPFD)", "socket fd " + std::to_string(sock));
  if (setsockopt(a.fd, SOL_SOCKET, SO_ATTACH_BPF, &progFd, sizeof(progFd)) != 0) {
    int err = errno;
    close(a.fd);
    ThrowErrno(env, err, "setsockopt(SO_ATTACH_BPF)", "socket fd " + std::to_string(sock) + " (program " + Name() + ")");
  }
  return Link::New(env, a);
}

}  // namespace glue

namespace glue {

namespace {
// The filters on one side of an interface's clsact qdisc, by a
// RTM_GETTFILTER dump (libbpf can only query a filter it knows the handle
// and priority of); -errno on failure (no qdisc: EINVAL or ENOENT).
int CountTcFilters(int ifindex, uint32_t parent) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return -errno;
  struct {
    nlmsghdr nh;
    tcmsg t;
  } req;
  memset(&req, 0, sizeof(req));
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.nh.nlmsg_type = RTM_GETTFILTER;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 1;
  req.t.tcm_family = AF_UNSPEC;
  req.t.tcm_ifindex = ifindex;
  req.t.tcm_parent = parent;
  if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  alignas(nlmsghdr) char buf[32768];
  int count = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return -err;
    }
    if (n == 0) break;
    int len = static_cast<int>(n);
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) {
        close(fd);
        return count;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        int err = static_cast<nlmsgerr*>(NLMSG_DATA(h))->error;
        close(fd);
        return err < 0 ? err : -EIO;
      }
      if (h->nlmsg_type == RTM_NEWTFILTER) count++;
    }
  }
  close(fd);
  return count;
}
}  // namespace

// tcFilterCount(ifindex): the filters on both sides of the clsact qdisc.
Napi::Value TcFilterCount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = I32(info[0], 0);
  int total = 0;
  for (uint32_t side : {TC_H_MIN_INGRESS, TC_H_MIN_EGRESS}) {
    int n = CountTcFilters(ifindex, TC_H_MAKE(TC_H_CLSACT, side));
    if (n < 0) ThrowErrno(env, n, "RTM_GETTFILTER", "ifindex " + std::to_string(ifindex));
    total += n;
  }
  return Napi::Number::New(env, total);
}

// tcHookDestroy(ifindex): removes the interface's clsact qdisc, and with it
// every filter on it (bpf_tc_hook_destroy with both sides).
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = I32(info[0], 0);
  DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
                      .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  LogCapture cap;
  int err = bpf_tc_hook_destroy(&hook);
  if (err) ThrowErrno(env, err, "bpf_tc_hook_destroy", "ifindex " + std::to_string(ifindex), cap.take());
  return env.Undefined();
}

}  // namespace glue
