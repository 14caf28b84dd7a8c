// tracefs's trace_pipe (where bpf_printk writes), read without a blocked
// thread: the file is opened O_NONBLOCK and watched by libuv (poller.cc), so
// closing it ends the reading at once, whether or not a line ever comes.
#include "glue.h"
#include "poller.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <cerrno>
#include <unistd.h>

namespace glue {

namespace {

class TracePipe : public PolledWrap<TracePipe> {
 public:
  static constexpr const char* kName = "tracePipe";

  static Napi::Function Init(Napi::Env env) { return DefineClass(env, "NativeTracePipe", PollerMethods({})); }

  // new NativeTracePipe(path, onBatch(buf, count, errno)): batches of raw
  // text, one frame per read.
  explicit TracePipe(const Napi::CallbackInfo& info) : PolledWrap<TracePipe>(info) {
    Napi::Env env = info.Env();
    std::string path = info[0].As<Napi::String>().Utf8Value();
    fd_ = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) ThrowErrno(env, errno, "open", path);
    StartPolling(env, info[1].As<Napi::Function>(), fd_);
  }

  ~TracePipe() override { Release(); }

  bool IsOpen() const { return fd_ >= 0; }

  void Release() {
    if (poller_) poller_->Close();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  friend class PolledWrap<TracePipe>;
  // Reads what is there (a read returns whole lines), up to a bound per
  // wakeup so that a flood cannot hold the loop.
  int Drain() {
    char buf[16384];
    for (int i = 0; i < 64 && fd_ >= 0; i++) {
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n > 0) {
        poller_->Append(0, 0, buf, static_cast<uint32_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) return -errno;
      break;
    }
    return 0;
  }

  int fd_ = -1;
};

// mountTracefs(dir): mount(2) of tracefs on `dir` (which must exist).
Napi::Value MountTracefs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir = info[0].As<Napi::String>().Utf8Value();
  if (mount("tracefs", dir.c_str(), "tracefs", 0, nullptr) != 0) ThrowErrno(env, errno, "mount", dir);
  return env.Undefined();
}

}  // namespace

void InitTracePipe(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTracePipe", TracePipe::Init(env));
  exports.Set("mountTracefs", Napi::Function::New<MountTracefs>(env, "mountTracefs"));
}

}  // namespace glue
