// libbpf's print callback is process-wide; what it prints during one call is
// captured per thread, so the error of that call can carry it (and an
// AsyncWorker's load captures on its own thread).
#include "glue.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace glue {

namespace {
thread_local LogCapture* sink = nullptr;
bool debug = false;

// Everything libbpf prints during a captured call is kept, debug included:
// the specific cause of a failure is often only at debug level. Debug lines
// are marked with kDebugMark (ts/errors.ts takes the marks out).
constexpr char kDebugMark = '\x02';

int Print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (debug) {
    va_list copy;
    va_copy(copy, args);
    vfprintf(stderr, fmt, copy);
    va_end(copy);
  }
  bool forward = PrintWanted(level);
  if (sink == nullptr && !forward) return 0;
  char small[512];
  std::string text;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(small, sizeof(small), fmt, copy);
  va_end(copy);
  if (n < 0) return 0;
  if (static_cast<size_t>(n) < sizeof(small)) {
    text.assign(small, n);
  } else {
    text.assign(n + 1, '\0');
    vsnprintf(text.data(), text.size(), fmt, args);
    text.resize(n);
  }
  if (sink != nullptr) {
    sink->Add(level, text);
  } else {
    std::vector<std::pair<int, std::string>> one;
    one.emplace_back(level, std::move(text));
    PrintForward(std::move(one), false);
  }
  return 0;
}
}  // namespace

LogCapture::LogCapture() : prev_(sink) { sink = this; }
LogCapture::LogCapture(Quiet) : prev_(sink) {
  sink = this;
  taken_ = true;
}
LogCapture::~LogCapture() {
  sink = prev_;
  if (!forward_.empty()) PrintForward(std::move(forward_), taken_);
}
std::string LogCapture::take() {
  taken_ = true;
  return std::move(text_);
}
void LogCapture::Add(int level, const std::string& text) {
  if (level == LIBBPF_DEBUG) text_.push_back(kDebugMark);
  text_.append(text);
  if (PrintWanted(level)) forward_.emplace_back(level, text);
}

void InstallPrintCallback() {
  const char* d = getenv("LIBBPF_NODE_DEBUG");
  debug = d != nullptr && *d != '\0' && *d != '0';
  libbpf_set_print(Print);
}

Napi::Error MakeError(Napi::Env env, const Failure& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", f.err);
  o.Set("op", f.op);
  if (!f.target.empty()) o.Set("target", f.target);
  o.Set("log", f.log);
  if (f.verifier) {
    o.Set("program", f.program);
    o.Set("verifierLog", f.verifierLog);
  }
  AddonData& d = Data(env);
  if (d.makeError.IsEmpty()) {
    return Napi::Error::New(env, f.op + " failed: errno " + std::to_string(f.err));
  }
  Napi::Value e = d.makeError.Call({o});
  return Napi::Error(env, e);
}

void Throw(Napi::Env env, const Failure& f) { throw MakeError(env, f); }

void ThrowErrno(Napi::Env env, int err, const char* op, const std::string& target,
                const std::string& log) {
  Failure f;
  f.err = err < 0 ? -err : err;
  if (f.err == 0) f.err = EINVAL;
  f.op = op;
  f.target = target;
  f.log = log;
  Throw(env, f);
}

void ThrowState(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::TypeError::New(env, msg);
  e.Set("code", code);
  throw e;
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsBuffer()) {
    Napi::Error e = Napi::TypeError::New(info.Env(), std::string(what) + " must be a Buffer");
    e.Set("code", "ERR_INVALID_ARG_TYPE");
    throw e;
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

void ReportPendingException(napi_env env) {
  napi_value exception = nullptr;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
      napi_get_and_clear_last_exception(env, &exception) == napi_ok)
    napi_fatal_exception(env, exception);
}

}  // namespace glue
