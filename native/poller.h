// An epoll fd (a ring or perf buffer's) watched by libuv. On each wakeup the
// owner drains records into `batch` (copied out of the kernel's pages) and
// the batch reaches JavaScript in one call. Shared by ring_buffer.cc and
// perf_buffer.cc.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace glue {

// Record framing in a batch: an 8-byte header, then the data, padded so the
// next header (and every record's data) is 8-byte aligned.
struct FrameHeader {
  uint32_t len;     // bytes of data
  uint16_t source;  // ring index (RingBuffer) or CPU (PerfBuffer)
  uint16_t kind;    // 0: a record; 1: lost records (data: u64 count)
};
static_assert(sizeof(FrameHeader) == 8, "frame header is 8 bytes");

class BatchPoller {
 public:
  // `drain` fills the batch; it returns a negative errno on failure.
  using Drain = std::function<int(BatchPoller&)>;

  BatchPoller(Napi::Env env, Napi::Object owner, Napi::Function onBatch, const char* name);
  ~BatchPoller();

  // Watches `fd` (not owned). Unref'd until Ref().
  int Start(int fd, Drain drain);
  int Resume();
  void Pause();
  void Ref();
  void Unref();
  // Stops watching; the uv handle is released asynchronously.
  void Close();
  // Drains now and delivers, as a wakeup would. Returns records delivered.
  int64_t DrainNow();

  // Wake-only mode (ring_mmap.cc): no batch; every wakeup calls onBatch(null,
  // 0, errno) and JavaScript reads the records from the mapped ring itself,
  // returning how many it took (what DrainNow() then returns).
  void SetWakeOnly() { wakeOnly_ = true; }

  void Append(uint16_t source, uint16_t kind, const void* data, uint32_t len);
  size_t records() const { return records_; }
  size_t bytes() const { return batch_.size(); }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnCheck(uv_check_t* handle);
  // Runs `fn` (which may call into JavaScript) from a libuv callback.
  void FromLoop(void (*fn)(BatchPoller*, int), int arg);
  int64_t Deliver(int err);

  Napi::Env env_;
  Napi::ObjectReference owner_;
  // Weak: the JavaScript side keeps the callback alive while it wants
  // batches, so a dropped (unconsumed) buffer can still be collected.
  Napi::FunctionReference onBatch_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uv_poll_t* poll_ = nullptr;
  // One drain right after libuv's next poll phase, once it has registered
  // the fd: what arrived before then may have no wakeup left (a perf fd's
  // poll hands its readiness out once, and epoll polls a new fd twice). The
  // idle handle keeps that poll phase from blocking.
  uv_check_t* check_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  Drain drain_;
  std::vector<uint8_t> batch_;
  size_t records_ = 0;
  bool wakeOnly_ = false;
};

// The JavaScript-facing controls shared by the ring and perf buffer
// wrappers: T provides IsOpen(), Release() and poller_.
template <typename T>
class PolledWrap : public Napi::ObjectWrap<T> {
 public:
  using Napi::ObjectWrap<T>::ObjectWrap;

 protected:
  using Methods = std::vector<typename Napi::ObjectWrap<T>::PropertyDescriptor>;
  static Methods PollerMethods(Methods more) {
    Methods m = {
        Napi::ObjectWrap<T>::InstanceMethod("resume", &PolledWrap::Resume),
        Napi::ObjectWrap<T>::InstanceMethod("pause", &PolledWrap::Pause),
        Napi::ObjectWrap<T>::InstanceMethod("ref", &PolledWrap::Ref),
        Napi::ObjectWrap<T>::InstanceMethod("unref", &PolledWrap::Unref),
        Napi::ObjectWrap<T>::InstanceMethod("consume", &PolledWrap::Consume),
        Napi::ObjectWrap<T>::InstanceMethod("close", &PolledWrap::Close),
    };
    m.insert(m.end(), more.begin(), more.end());
    return m;
  }

  void Live(Napi::Env env, const char* what) {
    if (!static_cast<T*>(this)->IsOpen()) {
      Napi::Error e = Napi::TypeError::New(env, std::string(what) + " is closed");
      e.Set("code", "ERR_INVALID_STATE");
      throw e;
    }
  }

  // Watches `epollFd` and delivers batches to `onBatch`; T::Drain() fills
  // them. On failure T is released and the error thrown.
  void StartPolling(Napi::Env env, Napi::Function onBatch, int epollFd) {
    poller_ = std::make_unique<BatchPoller>(env, this->Value(), onBatch, T::kName);
    int err = poller_->Start(epollFd, [this](BatchPoller&) { return static_cast<T*>(this)->Drain(); });
    if (err != 0) {
      static_cast<T*>(this)->Release();
      Napi::Error e = Napi::Error::New(env, std::string("uv_poll_start: ") + uv_strerror(err));
      throw e;
    }
  }

  std::unique_ptr<BatchPoller> poller_;

 private:
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Live(info.Env(), T::kName);
    int err = poller_->Resume();
    if (err != 0) {
      Napi::Error e = Napi::Error::New(info.Env(), std::string("uv_poll_start: ") + uv_strerror(err));
      throw e;
    }
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
  // Drains what the kernel holds now (one budget's worth), delivering it
  // through the batch callback before returning the count.
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Live(info.Env(), T::kName);
    return Napi::Number::New(info.Env(), static_cast<double>(poller_->DrainNow()));
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    static_cast<T*>(this)->Release();
    return info.Env().Undefined();
  }
};

}  // namespace glue
