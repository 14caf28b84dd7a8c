// BPF_MAP_TYPE_RINGBUF rings mapped into JavaScript: the consumer reads
// records from the kernel's pages itself (ts/internal/ring_reader.ts). This
// file only maps each ring and watches the rings' epoll fd with libuv; every
// wakeup calls JavaScript, which walks the headers and advances the
// consumer position. No policy and no record handling here.
//
// Per ring, as the kernel lays it out (kernel/bpf/ringbuf.c) and as libbpf
// maps it:
//   offset 0:          the consumer page (consumer_pos), read-write;
//   offset page_size:  the producer page (producer_pos), then the data
//                      pages, read-only; the kernel maps the data pages
//                      twice back to back, so a mapping of page + 2*size
//                      shows every record contiguous, even one that wraps.
//
// Lifetime: each mapping belongs to an external ArrayBuffer whose finalizer
// unmaps it, so memory JavaScript can still reach is never unmapped. close()
// detaches the ArrayBuffers (napi_detach_arraybuffer): any view left in
// JavaScript then has length 0 (reads give undefined, Atomics throw a
// TypeError, nothing touches the pages), V8 drops its backing store and the
// finalizer unmaps right away instead of at some later GC. The views never
// leave ts/internal: users get copies or decoded values only.
#include "glue.h"
#include "poller.h"

#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace glue {

namespace {

struct Mapping {
  void* addr;
  size_t len;
};

void Unmap(Napi::Env, void*, Mapping* m) {
  munmap(m->addr, m->len);
  delete m;
}

class RingMmap : public PolledWrap<RingMmap> {
 public:
  static constexpr const char* kName = "RingBuffer";

  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeRingMmap",
                       PollerMethods({
                           InstanceMethod<&RingMmap::Add>("add"),
                       }));
  }

  // new NativeRingMmap(onWake(null, 0, errno) -> records taken)
  explicit RingMmap(const Napi::CallbackInfo& info) : PolledWrap<RingMmap>(info) {
    Napi::Env env = info.Env();
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) ThrowErrno(env, errno, "epoll_create1");
    StartPolling(env, info[0].As<Napi::Function>(), epfd_);
    poller_->SetWakeOnly();
  }

  // Collected without close(): nothing in JavaScript reaches the
  // ArrayBuffers either (the reader that held them went with the stream),
  // so their own finalizers unmap; no JavaScript call from a finalizer here.
  ~RingMmap() override {
    collected_ = true;
    Release();
  }

  bool IsOpen() const { return epfd_ >= 0; }

  void Release() {
    if (poller_) poller_->Close();
    if (epfd_ >= 0) close(epfd_);
    epfd_ = -1;
    // During environment teardown the references may already be gone; the
    // finalizers unmap then.
    for (Napi::Reference<Napi::ArrayBuffer>& r : buffers_) {
      if (r.IsEmpty() || collected_) continue;
      Napi::ArrayBuffer ab = r.Value();
      if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      r.Reset();
    }
    buffers_.clear();
  }

 private:
  friend class PolledWrap<RingMmap>;
  int Drain() { return 0; }  // JavaScript drains (wake-only poller)

  Napi::ArrayBuffer Map(Napi::Env env, int fd, size_t len, int prot, off_t off, const char* what) {
    void* p = mmap(nullptr, len, prot, MAP_SHARED, fd, off);
    if (p == MAP_FAILED) ThrowErrno(env, errno, "mmap", std::string(what) + " of ring fd " + std::to_string(fd));
    Mapping* m = new Mapping{p, len};
    Napi::ArrayBuffer ab;
    try {
      ab = Napi::ArrayBuffer::New(env, p, len, Unmap, m);
    } catch (...) {
      munmap(p, len);
      delete m;
      throw;
    }
    buffers_.push_back(Napi::Persistent(ab));
    return ab;
  }

  // add(mapFd, size) -> { consumer: ArrayBuffer (1 page, rw), data:
  // ArrayBuffer (producer page + 2 * size, ro) }; the ring joins the epoll set.
  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env, kName);
    int fd = info[0].As<Napi::Number>().Int32Value();
    size_t size = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    Napi::ArrayBuffer consumer = Map(env, fd, page, PROT_READ | PROT_WRITE, 0, "consumer page");
    Napi::ArrayBuffer data = Map(env, fd, page + 2 * size, PROT_READ, static_cast<off_t>(page), "producer and data pages");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(buffers_.size() / 2 - 1);
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) ThrowErrno(env, errno, "epoll_ctl", "ring fd " + std::to_string(fd));
    Napi::Object out = Napi::Object::New(env);
    out.Set("consumer", consumer);
    out.Set("data", data);
    out.Set("pageSize", Napi::Number::New(env, static_cast<double>(page)));
    return out;
  }

  int epfd_ = -1;
  bool collected_ = false;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> buffers_;
};

}  // namespace

Napi::Function RingMmapInit(Napi::Env env) { return RingMmap::Init(env); }

}  // namespace glue
