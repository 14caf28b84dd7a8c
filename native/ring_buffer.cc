// BPF_MAP_TYPE_RINGBUF consumer: libbpf's ring_buffer over one or several
// rings, its epoll fd watched by libuv (poller.cc). Records are copied out
// of the ring's read-only pages into a batch, up to a budget per wakeup so
// that one busy ring cannot starve the event loop: what stays in the ring
// keeps the (level-triggered) fd readable for the next loop turn.
#include "glue.h"
#include "poller.h"

#include <sys/mman.h>
#include <deque>
#include <cerrno>
#include <unistd.h>

namespace glue {

namespace {

constexpr int kBudgetReached = -EXFULL;  // a sentinel no libbpf path returns

class RingBuffer : public PolledWrap<RingBuffer> {
 public:
  static constexpr const char* kName = "RingBuffer";

  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeRingBuffer",
                       PollerMethods({
                           InstanceMethod<&RingBuffer::Add>("add"),
                           InstanceMethod<&RingBuffer::Available>("available"),
                       }));
  }

  // new NativeRingBuffer(mapFd, onBatch(buf, count, errno), budgetRecords, budgetBytes)
  explicit RingBuffer(const Napi::CallbackInfo& info) : PolledWrap<RingBuffer>(info) {
    Napi::Env env = info.Env();
    budgetRecords_ = info[2].As<Napi::Number>().Uint32Value();
    budgetBytes_ = info[3].As<Napi::Number>().Uint32Value();
    int fd = info[0].As<Napi::Number>().Int32Value();
    rings_.push_back(Ring{this, 0, fd, nullptr, nullptr, 0});
    LogCapture cap;
    rb_ = ring_buffer__new(fd, OnSample, &rings_.front(), nullptr);
    if (rb_ == nullptr) ThrowErrno(env, errno, "ring_buffer__new", "map fd " + std::to_string(fd), cap.take());
    MapPositions(env, rings_.front());
    StartPolling(env, info[1].As<Napi::Function>(), ring_buffer__epoll_fd(rb_));
  }

  ~RingBuffer() override { Release(); }

  bool IsOpen() const { return rb_ != nullptr; }

  void Release() {
    if (poller_) poller_->Close();
    if (rb_ != nullptr) ring_buffer__free(rb_);
    rb_ = nullptr;
    for (Ring& r : rings_) {
      if (r.consumer) munmap(const_cast<uint64_t*>(r.consumer), r.page);
      if (r.producer) munmap(const_cast<uint64_t*>(r.producer), r.page);
      r.consumer = r.producer = nullptr;
    }
  }

 private:
  struct Ring {
    RingBuffer* self;
    uint16_t index;
    int fd;
    const uint64_t* consumer;  // read-only views of the positions, for available()
    const uint64_t* producer;
    size_t page;
  };

  static int OnSample(void* ctx, void* data, size_t size) {
    Ring* r = static_cast<Ring*>(ctx);
    RingBuffer* self = r->self;
    self->poller_->Append(r->index, 0, data, static_cast<uint32_t>(size));
    if (self->poller_->records() >= self->budgetRecords_ || self->poller_->bytes() >= self->budgetBytes_)
      return kBudgetReached;  // libbpf has already moved the consumer past this record
    return 0;
  }

  friend class PolledWrap<RingBuffer>;
  int Drain() {
    if (rb_ == nullptr) return 0;
#if LIBBPF_MAJOR_VERSION > 1 || (LIBBPF_MAJOR_VERSION == 1 && LIBBPF_MINOR_VERSION >= 5)
    int n = ring_buffer__consume_n(rb_, budgetRecords_);
#else
    int n = ring_buffer__consume(rb_);
#endif
    return n == kBudgetReached ? 0 : (n < 0 ? n : 0);
  }

  void MapPositions(Napi::Env env, Ring& r) {
    r.page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* c = mmap(nullptr, r.page, PROT_READ, MAP_SHARED, r.fd, 0);
    void* p = mmap(nullptr, r.page, PROT_READ, MAP_SHARED, r.fd, r.page);
    r.consumer = c == MAP_FAILED ? nullptr : static_cast<const uint64_t*>(c);
    r.producer = p == MAP_FAILED ? nullptr : static_cast<const uint64_t*>(p);
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env, kName);
    ring_buffer* rb = rb_;
    int fd = info[0].As<Napi::Number>().Int32Value();
    // libbpf keeps a pointer to each ring's ctx: a deque does not move its
    // elements when it grows.
    rings_.push_back(Ring{this, static_cast<uint16_t>(rings_.size()), fd, nullptr, nullptr, 0});
    LogCapture cap;
    int err = ring_buffer__add(rb, fd, OnSample, &rings_.back());
    if (err != 0) {
      rings_.pop_back();
      ThrowErrno(env, err, "ring_buffer__add", "map fd " + std::to_string(fd), cap.take());
    }
    MapPositions(env, rings_.back());
    return Napi::Number::New(env, rings_.back().index);
  }

  // Bytes written by the producers and not yet consumed, per ring.
  Napi::Value Available(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array a = Napi::Array::New(env, rings_.size());
    for (size_t i = 0; i < rings_.size(); i++) {
      const Ring& r = rings_[i];
      double avail = 0;
      if (r.consumer && r.producer)
        avail = static_cast<double>(__atomic_load_n(r.producer, __ATOMIC_ACQUIRE) -
                                    __atomic_load_n(r.consumer, __ATOMIC_ACQUIRE));
      a.Set(i, avail);
    }
    return a;
  }

  ring_buffer* rb_ = nullptr;
  std::deque<Ring> rings_;
  uint32_t budgetRecords_ = 0, budgetBytes_ = 0;
};

}  // namespace

Napi::Function RingBufferInit(Napi::Env env) { return RingBuffer::Init(env); }

}  // namespace glue
