// BPF_MAP_TYPE_PERF_EVENT_ARRAY consumer: libbpf's perf_buffer (one ring per
// CPU), its epoll fd watched by libuv (poller.cc). Samples and lost-sample
// notices go to JavaScript in one batch per wakeup; a wakeup drains every
// CPU's buffer, each at most page_cnt pages.
#include "glue.h"
#include "poller.h"

#include <cerrno>

namespace glue {

namespace {

class PerfBuffer : public PolledWrap<PerfBuffer> {
 public:
  static constexpr const char* kName = "PerfBuffer";

  static Napi::Function Init(Napi::Env env) { return DefineClass(env, "NativePerfBuffer", PollerMethods({})); }

  // new NativePerfBuffer(mapFd, pageCount, onBatch(buf, count, errno))
  explicit PerfBuffer(const Napi::CallbackInfo& info) : PolledWrap<PerfBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    size_t pages = info[1].As<Napi::Number>().Uint32Value();
    LogCapture cap;
    pb_ = perf_buffer__new(fd, pages, OnSample, OnLost, this, nullptr);
    if (pb_ == nullptr) ThrowErrno(env, errno, "perf_buffer__new", "map fd " + std::to_string(fd), cap.take());
    StartPolling(env, info[2].As<Napi::Function>(), perf_buffer__epoll_fd(pb_));
  }

  ~PerfBuffer() override { Release(); }

  bool IsOpen() const { return pb_ != nullptr; }

  void Release() {
    if (poller_) poller_->Close();
    if (pb_ != nullptr) perf_buffer__free(pb_);
    pb_ = nullptr;
  }

 private:
  static void OnSample(void* ctx, int cpu, void* data, __u32 size) {
    static_cast<PerfBuffer*>(ctx)->poller_->Append(static_cast<uint16_t>(cpu), 0, data, size);
  }

  static void OnLost(void* ctx, int cpu, __u64 count) {
    static_cast<PerfBuffer*>(ctx)->poller_->Append(static_cast<uint16_t>(cpu), 1, &count, sizeof(count));
  }

  // Every CPU's buffer is read, not just those epoll calls ready: perf's
  // poll hands out its readiness once (it exchanges it for zero), and
  // libuv's check of the nested epoll fd has already taken it.
  friend class PolledWrap<PerfBuffer>;
  int Drain() {
    if (pb_ == nullptr) return 0;
    int n = perf_buffer__consume(pb_);
    return n < 0 ? n : 0;
  }

  perf_buffer* pb_ = nullptr;
};

}  // namespace

Napi::Function PerfBufferInit(Napi::Env env) { return PerfBuffer::Init(env); }

}  // namespace glue
