// perf_event_open(2) for attachPerfEvent(): the fd is handed to a link,
// which owns it.
#include "glue.h"

#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>

namespace glue {

// perfEventOpen(type, config, sample, isFreq, pid, cpu)
Napi::Value PerfEventOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  perf_event_attr attr;
  memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = info[0].As<Napi::Number>().Uint32Value();
  bool lossless = true;
  attr.config = info[1].IsBigInt() ? info[1].As<Napi::BigInt>().Uint64Value(&lossless)
                                   : static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
  uint64_t sample = static_cast<uint64_t>(info[2].As<Napi::Number>().Int64Value());
  if (info[3].ToBoolean()) {
    attr.freq = 1;
    attr.sample_freq = sample;
  } else {
    attr.sample_period = sample;
  }
  int pid = info[4].As<Napi::Number>().Int32Value();
  int cpu = info[5].As<Napi::Number>().Int32Value();
  int fd = static_cast<int>(syscall(__NR_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) {
    ThrowErrno(env, errno, "perf_event_open",
               "type " + std::to_string(attr.type) + " config " + std::to_string(attr.config) + " pid " +
                   std::to_string(pid) + " cpu " + std::to_string(cpu));
  }
  return Napi::Number::New(env, fd);
}

}  // namespace glue
