// tcQuery(ifindex, parent): the classic tc filters under one clsact parent
// of an interface, as `tc filter show` and `bpftool net` list them. libbpf
// has no list call (bpf_tc_query looks up one filter by handle and
// priority), so this is an RTM_GETTFILTER dump over rtnetlink. Only the
// decoding of the kernel's answer lives here; what is kept (cls_bpf
// filters) and what "no clsact" means is the TypeScript layer's business.
#include "glue.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>
#include <unistd.h>

namespace glue {
namespace {

struct Filter {
  uint32_t handle = 0, priority = 0, protocol = 0, progId = 0, flags = 0, flagsGen = 0;
  std::string kind, name;
  bool hasOptions = false;
};

// Closes the socket on every path out (errors throw).
struct Sock {
  int fd;
  ~Sock() { if (fd >= 0) close(fd); }
};

std::string AttrString(const rtattr* a) {
  const char* s = static_cast<const char*>(RTA_DATA(a));
  size_t n = RTA_PAYLOAD(a);
  return std::string(s, strnlen(s, n));
}

uint32_t AttrU32(const rtattr* a) {
  uint32_t v = 0;
  if (RTA_PAYLOAD(a) >= sizeof v) memcpy(&v, RTA_DATA(a), sizeof v);
  return v;
}

void ParseOptions(const rtattr* opts, Filter& f) {
  int len = RTA_PAYLOAD(opts);
  for (const rtattr* a = static_cast<const rtattr*>(RTA_DATA(opts)); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
    switch (a->rta_type & NLA_TYPE_MASK) {
      case TCA_BPF_ID: f.progId = AttrU32(a); f.hasOptions = true; break;
      case TCA_BPF_NAME: f.name = AttrString(a); break;
      case TCA_BPF_FLAGS: f.flags = AttrU32(a); break;
      case TCA_BPF_FLAGS_GEN: f.flagsGen = AttrU32(a); break;
      default: break;
    }
  }
}

// Returns 0 or a negative errno (the kernel's, or the socket's).
int Dump(int ifindex, uint32_t parent, std::vector<Filter>& out) {
  Sock s{socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)};
  if (s.fd < 0) return -errno;
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(s.fd, reinterpret_cast<sockaddr*>(&local), sizeof local) < 0) return -errno;
  socklen_t alen = sizeof local;
  if (getsockname(s.fd, reinterpret_cast<sockaddr*>(&local), &alen) < 0) return -errno;

  struct {
    nlmsghdr nh;
    tcmsg t;
  } req{};
  const uint32_t seq = 1;
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(tcmsg));
  req.nh.nlmsg_type = RTM_GETTFILTER;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = seq;
  req.t.tcm_family = AF_UNSPEC;
  req.t.tcm_ifindex = ifindex;
  req.t.tcm_parent = parent;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(s.fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return -errno;

  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = recv(s.fd, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) return -ENODATA;
    int len = static_cast<int>(n);
    for (const nlmsghdr* h = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_pid != local.nl_pid || h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_DONE) {
        // A dump's end carries its error, if any, as an int.
        int e = 0;
        if (h->nlmsg_len >= NLMSG_LENGTH(sizeof e)) memcpy(&e, NLMSG_DATA(h), sizeof e);
        return e < 0 ? e : 0;
      }
      if (h->nlmsg_type == NLMSG_ERROR) {
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EBADMSG;
        const nlmsgerr* e = static_cast<const nlmsgerr*>(NLMSG_DATA(h));
        return e->error < 0 ? e->error : -EBADMSG;
      }
      if (h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(tcmsg))) continue;
      const tcmsg* t = static_cast<const tcmsg*>(NLMSG_DATA(h));
      Filter f;
      f.handle = t->tcm_handle;
      f.priority = t->tcm_info >> 16;
      f.protocol = ntohs(static_cast<uint16_t>(t->tcm_info & 0xffff));
      int alen2 = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(tcmsg)));
      const rtattr* opts = nullptr;
      for (const rtattr* a = TCA_RTA(t); RTA_OK(a, alen2); a = RTA_NEXT(a, alen2)) {
        if (a->rta_type == TCA_KIND) f.kind = AttrString(a);
        else if ((a->rta_type & NLA_TYPE_MASK) == TCA_OPTIONS) opts = a;
      }
      // Option numbers are per classifier: only cls_bpf's are decoded.
      if (opts && f.kind == "bpf") ParseOptions(opts, f);
      out.push_back(std::move(f));
    }
  }
}

Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ifindex = info[0].As<Napi::Number>().Int32Value();
  uint32_t parent = info[1].As<Napi::Number>().Uint32Value();
  std::string target = "ifindex " + std::to_string(ifindex);
  // The kernel answers a dump on a missing interface with nothing at all:
  // look the interface up so that the caller can tell.
  char name[IF_NAMESIZE];
  if (!if_indextoname(static_cast<unsigned>(ifindex), name)) ThrowErrno(env, ENODEV, "if_indextoname", target);
  std::vector<Filter> filters;
  int err = Dump(ifindex, parent, filters);
  if (err) ThrowErrno(env, err, "RTM_GETTFILTER", target);
  Napi::Array a = Napi::Array::New(env);
  uint32_t i = 0;
  for (const Filter& f : filters) {
    // The head of each priority comes without options (no handle), and
    // other classifiers (u32, flower, ...) are not ours to decode: skip.
    if (!f.hasOptions) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", f.kind);
    o.Set("handle", f.handle);
    o.Set("priority", f.priority);
    o.Set("protocol", f.protocol);
    o.Set("progId", f.progId);
    o.Set("name", f.name);
    o.Set("flags", f.flags);
    o.Set("flagsGen", f.flagsGen);
    a.Set(i++, o);
  }
  return a;
}

}  // namespace

void InitTcQuery(Napi::Env env, Napi::Object exports) {
  exports.Set("tcQuery", Napi::Function::New<TcQuery>(env, "tcQuery"));
}

}  // namespace glue
