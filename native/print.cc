// libbpf's messages for JS: libbpf prints from any thread (worker-thread
// loads, its own probes) and from inside calls made on the JS thread, so
// nothing here calls JS directly. Messages are queued under a mutex and one
// thread-safe function call drains the queue on the event loop, after the
// libbpf call that printed them has returned. ts/print.ts decides what to do
// with them (setLibbpfPrint's callback, or process.emitWarning).
#include "glue.h"

#include <atomic>
#include <mutex>

namespace glue {

namespace {

struct Entry {
  int level;
  std::string text;
  bool failed;
  double group;  // one per PrintForward: the messages of one libbpf call
};

std::mutex mu;
std::vector<Entry> queue;             // guarded by mu
Napi::ThreadSafeFunction* tsfn = nullptr;  // guarded by mu; of the first env that asked
napi_env owner = nullptr;             // guarded by mu
bool scheduled = false;               // guarded by mu: a drain is on its way
// The most verbose level JS wants (0 warn, 1 info, 2 debug); -1: none.
std::atomic<int> wanted{-1};
// Bounds the queue if the loop is stalled (a long synchronous load with
// debug output): the oldest are kept, the rest counted as dropped.
constexpr size_t kMaxQueued = 100000;
size_t dropped = 0;                   // guarded by mu
double groups = 0;                    // guarded by mu

void Drain(Napi::Env env, Napi::Function callback) {
  std::vector<Entry> batch;
  size_t lost;
  {
    std::lock_guard<std::mutex> lock(mu);
    batch.swap(queue);
    scheduled = false;
    lost = dropped;
    dropped = 0;
  }
  if (env == nullptr || callback.IsEmpty()) return;
  // No C++ exception may leave a thread-safe function's callback (it would
  // terminate the process): during teardown (a Worker terminated, the
  // process exiting) the calls below fail, and that is fine. A JS exception
  // from the callback itself stays pending, so Node reports it as uncaught.
  try {
    Napi::Array a = Napi::Array::New(env, batch.size());
    for (size_t i = 0; i < batch.size(); i++) {
      Napi::Array e = Napi::Array::New(env, 4);
      e.Set(0u, batch[i].level);
      e.Set(1u, batch[i].text);
      e.Set(2u, batch[i].failed);
      e.Set(3u, batch[i].group);
      a.Set(i, e);
    }
    napi_value argv[2] = {a, Napi::Number::New(env, static_cast<double>(lost))};
    napi_call_function(env, env.Undefined(), callback, 2, argv, nullptr);
  } catch (const Napi::Error&) {
    // teardown: nothing to deliver to
  }
}

void Cleanup(void* arg) {
  std::lock_guard<std::mutex> lock(mu);
  if (owner != static_cast<napi_env>(arg) || tsfn == nullptr) return;
  wanted = -1;
  tsfn->Release();
  delete tsfn;
  tsfn = nullptr;
  owner = nullptr;
  queue.clear();
}

// setPrintHandler(fn): fn(messages: [level, text, failed, group][], dropped) is
// called on this env's loop with what libbpf printed. False if another env
// (a worker thread) has the handler already: libbpf's callback is one per
// process.
Napi::Value SetPrintHandler(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::lock_guard<std::mutex> lock(mu);
  if (tsfn != nullptr) return Napi::Boolean::New(env, owner == static_cast<napi_env>(env));
  tsfn = new Napi::ThreadSafeFunction(
      Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "libbpf-print", 0, 1));
  // Pending messages never keep the process alive.
  tsfn->Unref(env);
  owner = env;
  napi_add_env_cleanup_hook(env, Cleanup, env);
  return Napi::Boolean::New(env, true);
}

// setPrintLevel(n): forward messages up to level n (-1: none).
Napi::Value SetPrintLevel(const Napi::CallbackInfo& info) {
  wanted = info[0].As<Napi::Number>().Int32Value();
  return info.Env().Undefined();
}

}  // namespace

bool PrintWanted(int level) { return level <= wanted.load(std::memory_order_relaxed); }

void PrintForward(std::vector<std::pair<int, std::string>>&& messages, bool failed) {
  std::lock_guard<std::mutex> lock(mu);
  if (tsfn == nullptr) return;
  double group = ++groups;
  for (auto& m : messages) {
    if (queue.size() >= kMaxQueued) {
      dropped++;
      continue;
    }
    queue.push_back(Entry{m.first, std::move(m.second), failed, group});
  }
  if (scheduled) return;
  if (tsfn->NonBlockingCall(Drain) == napi_ok) scheduled = true;
}

void InitPrint(Napi::Env env, Napi::Object exports) {
  exports.Set("setPrintHandler", Napi::Function::New<SetPrintHandler>(env, "setPrintHandler"));
  exports.Set("setPrintLevel", Napi::Function::New<SetPrintLevel>(env, "setPrintLevel"));
}

}  // namespace glue
