#include "poller.h"

#include "glue.h"

#include <cstring>

namespace glue {

BatchPoller::BatchPoller(Napi::Env env, Napi::Object owner, Napi::Function onBatch, const char* name)
    : env_(env),
      owner_(Napi::Weak(owner)),
      onBatch_(Napi::Weak(onBatch)),
      context_(std::make_unique<Napi::AsyncContext>(env, name)) {}

BatchPoller::~BatchPoller() { Close(); }

int BatchPoller::Start(int fd, Drain drain) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok) return -EINVAL;
  poll_ = new uv_poll_t;
  int err = uv_poll_init(loop, poll_, fd);
  if (err != 0) {
    delete poll_;
    poll_ = nullptr;
    return err;
  }
  poll_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  check_ = new uv_check_t;
  uv_check_init(loop, check_);
  check_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  drain_ = std::move(drain);
  return Resume();
}

int BatchPoller::Resume() {
  if (poll_ == nullptr) return -EBADF;
  uv_check_start(check_, OnCheck);
  uv_idle_start(idle_, [](uv_idle_t*) {});
  return uv_poll_start(poll_, UV_READABLE, OnPoll);
}

void BatchPoller::Pause() {
  if (poll_ != nullptr) uv_poll_stop(poll_);
  if (check_ != nullptr) uv_check_stop(check_);
  if (idle_ != nullptr) uv_idle_stop(idle_);
}

void BatchPoller::Ref() {
  if (poll_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
}

void BatchPoller::Unref() {
  if (poll_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

void BatchPoller::Close() {
  if (poll_ == nullptr) return;
  uv_poll_stop(poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(poll_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  poll_ = nullptr;
  uv_check_stop(check_);
  uv_close(reinterpret_cast<uv_handle_t*>(check_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  check_ = nullptr;
  uv_idle_stop(idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  idle_ = nullptr;
}

void BatchPoller::Append(uint16_t source, uint16_t kind, const void* data, uint32_t len) {
  size_t at = batch_.size();
  size_t padded = (static_cast<size_t>(len) + 7) & ~static_cast<size_t>(7);
  batch_.resize(at + sizeof(FrameHeader) + padded);
  FrameHeader h{len, source, kind};
  memcpy(batch_.data() + at, &h, sizeof(h));
  memcpy(batch_.data() + at + sizeof(h), data, len);
  records_++;
}

// Hands the batch to JavaScript. Called from libuv callbacks (through
// FromLoop) and from consume(), inside a HandleScope.
int64_t BatchPoller::Deliver(int err) {
  size_t n = records_;
  napi_value argv[3];
  argv[0] = n > 0 ? Napi::Buffer<uint8_t>::Copy(env_, batch_.data(), batch_.size()) : env_.Null();
  argv[1] = Napi::Number::New(env_, static_cast<double>(n));
  argv[2] = Napi::Number::New(env_, err);
  batch_.clear();
  records_ = 0;
  if (n == 0 && err == 0 && !wakeOnly_) return 0;
  Napi::Function fn = onBatch_.Value();
  if (fn.IsEmpty()) return 0;  // collected: nobody wants batches any more
  Napi::Object recv = owner_.Value();
  if (recv.IsEmpty()) recv = Napi::Object::New(env_);
  napi_value result;
  // Not Napi::Function::MakeCallback: while Node tears the environment
  // down, a call can fail without an exception, and must then be dropped.
  napi_status status = napi_make_callback(env_, *context_, recv, fn, 3, argv, &result);
  if (status != napi_ok) {
    ReportPendingException(env_);
    return 0;
  }
  if (wakeOnly_) {
    double taken = 0;
    if (napi_get_value_double(env_, result, &taken) != napi_ok) taken = 0;
    return static_cast<int64_t>(taken);
  }
  return static_cast<int64_t>(n);
}

int64_t BatchPoller::DrainNow() {
  if (!drain_) return 0;
  int err = drain_(*this);
  return Deliver(err < 0 ? -err : 0);
}

void BatchPoller::FromLoop(void (*fn)(BatchPoller*, int), int arg) {
  Napi::HandleScope scope(env_);
  try {
    fn(this, arg);
  } catch (const Napi::Error& e) {
    // No JavaScript caller to throw to: report it the way Node reports an
    // exception from any other event.
    napi_value v = e.Value();
    if (v != nullptr) napi_fatal_exception(env_, v);
  }
}

void BatchPoller::OnPoll(uv_poll_t* handle, int status, int events) {
  static_cast<BatchPoller*>(handle->data)->FromLoop([](BatchPoller* self, int status) {
    if (status < 0) self->Deliver(-status);
    else self->DrainNow();
  }, status);
}

void BatchPoller::OnCheck(uv_check_t* handle) {
  auto* self = static_cast<BatchPoller*>(handle->data);
  uv_check_stop(handle);
  uv_idle_stop(self->idle_);
  self->FromLoop([](BatchPoller* self, int) { self->DrainNow(); }, 0);
}

}  // namespace glue
