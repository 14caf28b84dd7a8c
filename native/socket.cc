// openRawSocket(ifname): an AF_PACKET socket bound to one interface, as the
// kernel's samples/bpf open_raw_sock() makes it for socket filters.
#include "glue.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace glue {

Napi::Value OpenRawSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  unsigned int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) ThrowErrno(env, errno, "if_nametoindex", ifname);
  int sock = socket(PF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (sock < 0) ThrowErrno(env, errno, "socket(PF_PACKET)", ifname);
  sockaddr_ll sll;
  memset(&sll, 0, sizeof(sll));
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_protocol = htons(ETH_P_ALL);
  if (bind(sock, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0) {
    int err = errno;
    close(sock);
    ThrowErrno(env, err, "bind", ifname);
  }
  return Napi::Number::New(env, sock);
}

Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string ifname = info[0].As<Napi::String>().Utf8Value();
  unsigned int ifindex = if_nametoindex(ifname.c_str());
  if (ifindex == 0) ThrowErrno(env, errno, "if_nametoindex", ifname);
  return Napi::Number::New(env, ifindex);
}

}  // namespace glue
