// BPF_MAP_TYPE_PERF_EVENT_ARRAY consumer: libbpf's perf_buffer (one ring per
// CPU), its epoll fd watched by libuv (poller.cc). Samples and lost-sample
// notices go to JavaScript in one batch per wakeup; a wakeup drains every
// CPU's buffer, each at most page_cnt pages.
#include "glue.h"
#include "poller.h"

#include <cerrno>

namespace glue {

namespace {

class PerfBuffer : public Napi::ObjectWrap<PerfBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativePerfBuffer",
                       {
                           InstanceMethod<&PerfBuffer::Resume>("resume"),
                           InstanceMethod<&PerfBuffer::Pause>("pause"),
                           InstanceMethod<&PerfBuffer::Ref>("ref"),
                           InstanceMethod<&PerfBuffer::Unref>("unref"),
                           InstanceMethod<&PerfBuffer::Consume>("consume"),
                           InstanceMethod<&PerfBuffer::Close>("close"),
                       });
  }

  // new NativePerfBuffer(mapFd, pageCount, onBatch(buf, count, errno))
  explicit PerfBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PerfBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    size_t pages = info[1].As<Napi::Number>().Uint32Value();
    poller_ = std::make_unique<BatchPoller>(env, info.This().As<Napi::Object>(),
                                            info[2].As<Napi::Function>(), "PerfBuffer");
    LogCapture cap;
    pb_ = perf_buffer__new(fd, pages, OnSample, OnLost, this, nullptr);
    if (pb_ == nullptr) ThrowErrno(env, errno, "perf_buffer__new", "map fd " + std::to_string(fd), cap.take());
    int err = poller_->Start(perf_buffer__epoll_fd(pb_), [this](BatchPoller&) { return Drain(); });
    if (err != 0) {
      Release();
      ThrowErrno(env, err, "uv_poll_start");
    }
  }

  ~PerfBuffer() override { Release(); }

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
  int Drain() {
    if (pb_ == nullptr) return 0;
    int n = perf_buffer__consume(pb_);
    return n < 0 ? n : 0;
  }

  void Release() {
    if (poller_) poller_->Close();
    if (pb_ != nullptr) perf_buffer__free(pb_);
    pb_ = nullptr;
  }

  void Live(Napi::Env env) {
    if (pb_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "PerfBuffer is closed");
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Live(info.Env());
    int err = poller_->Resume();
    if (err != 0) ThrowErrno(info.Env(), err, "uv_poll_start");
    return info.Env().Undefined();
  }
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    poller_->Pause();
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    poller_->Ref();
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    poller_->Unref();
    return info.Env().Undefined();
  }
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Live(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(poller_->DrainNow()));
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  perf_buffer* pb_ = nullptr;
  std::unique_ptr<BatchPoller> poller_;
};

}  // namespace

Napi::Function PerfBufferInit(Napi::Env env) { return PerfBuffer::Init(env); }

}  // namespace glue
