// bpf_object: open (file or memory), load (sync or on a worker thread), and
// the wrappers of its maps and programs. The verifier log is collected per
// program through bpf_program__set_log_buf().
#include "glue.h"

#include <bpf/btf.h>
#include <sys/mman.h>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace glue {

namespace {

// The kernel rejects log buffers above this (bpf_verifier_log_attr_valid()).
constexpr size_t kMaxLogSize = UINT32_MAX >> 2;
constexpr size_t kFirstLogSize = 1 << 20;

std::string SourceName(const ObjectState& s) {
  return s.path.empty() ? std::string("<buffer>") : s.path;
}

// libbpf 1.x returns NULL and sets errno when an open fails, but its
// libbpf_ptr() turns only the last 4095 values of the address space
// (IS_ERR) into NULL: a failure whose error code does not fit there, such
// as an extern whose size does not fit an int (bpf_object__collect_externs
// returns the size; still so in 1.7), comes back as ERR_PTR(code), which
// looks like an object. Any ERR_PTR(int) is in the top half of the address
// space, where no user-space pointer lives on Linux: such a value is an
// error, never an object (libbpf has freed the object already).
bool IsErrorPointer(const void* p, int* err) {
  auto v = static_cast<intptr_t>(reinterpret_cast<uintptr_t>(p));
  if (v >= 0 || v < static_cast<intptr_t>(INT_MIN)) return false;
  *err = v >= -4095 ? static_cast<int>(-v) : EINVAL;
  return true;
}

bpf_object* Open(ObjectState& s, Failure& f) {
  DECLARE_LIBBPF_OPTS(bpf_object_open_opts, o);
  const OpenOptions& p = s.opts;
  if (p.hasName) o.object_name = p.name.c_str();
  if (p.hasBtf) o.btf_custom_path = p.btfCustomPath.c_str();
  if (p.hasPinRoot) o.pin_root_path = p.pinRoot.c_str();
  if (p.hasKconfig) o.kconfig = p.kconfig.c_str();
  o.kernel_log_level = p.kernelLogLevel;
  LogCapture cap;
  bpf_object* obj = s.path.empty()
      ? bpf_object__open_mem(s.image.data(), s.image.size(), &o)
      : bpf_object__open_file(s.path.c_str(), &o);
  int bogus = 0;
  if (IsErrorPointer(obj, &bogus)) {
    obj = nullptr;
    errno = bogus;
  }
  if (obj == nullptr) {
    f.err = errno ? errno : EINVAL;
    f.op = s.path.empty() ? "bpf_object__open_mem" : "bpf_object__open_file";
    f.target = SourceName(s);
    f.log = cap.take();
  }
  return obj;
}

// A fresh bpf_object of the same source gets the pre-load settings the user
// made on the first one (same ELF, so maps and programs come in the same
// order). What libbpf cannot give back (reused and inner map fds, attach
// targets, program ifindexes) comes from `s`.
void CopySettings(const ObjectState& s, bpf_object* from, bpf_object* to) {
  bpf_map* b = bpf_object__next_map(to, nullptr);
  size_t i = 0;
  for (bpf_map* a = bpf_object__next_map(from, nullptr); a && b;
       a = bpf_object__next_map(from, a), b = bpf_object__next_map(to, b), i++) {
    if (bpf_map__type(a) != bpf_map__type(b)) bpf_map__set_type(b, bpf_map__type(a));
    if (bpf_map__key_size(a) != bpf_map__key_size(b)) bpf_map__set_key_size(b, bpf_map__key_size(a));
    if (bpf_map__value_size(a) != bpf_map__value_size(b))
      bpf_map__set_value_size(b, bpf_map__value_size(a));
    if (bpf_map__max_entries(a) != bpf_map__max_entries(b))
      bpf_map__set_max_entries(b, bpf_map__max_entries(a));
    if (bpf_map__map_flags(a) != bpf_map__map_flags(b))
      bpf_map__set_map_flags(b, bpf_map__map_flags(a));
    if (bpf_map__numa_node(a) != bpf_map__numa_node(b)) bpf_map__set_numa_node(b, bpf_map__numa_node(a));
    if (bpf_map__map_extra(a) != bpf_map__map_extra(b)) bpf_map__set_map_extra(b, bpf_map__map_extra(a));
    if (bpf_map__ifindex(a) != bpf_map__ifindex(b)) bpf_map__set_ifindex(b, bpf_map__ifindex(a));
    const char* pa = bpf_map__pin_path(a);
    const char* pb = bpf_map__pin_path(b);
    if (pa != nullptr && (pb == nullptr || strcmp(pa, pb) != 0)) bpf_map__set_pin_path(b, pa);
    bpf_map__set_autocreate(b, bpf_map__autocreate(a));
    if (i < s.innerFds.size() && s.innerFds[i] >= 0) bpf_map__set_inner_map_fd(b, s.innerFds[i]);
    if (i < s.reuseFds.size() && s.reuseFds[i] >= 0) bpf_map__reuse_fd(b, s.reuseFds[i]);
    size_t sz = 0;
    const void* iv = bpf_map__initial_value(a, &sz);
    if (iv != nullptr) bpf_map__set_initial_value(b, iv, sz);
  }
  bpf_program* q = bpf_object__next_program(to, nullptr);
  i = 0;
  for (bpf_program* p = bpf_object__next_program(from, nullptr); p && q;
       p = bpf_object__next_program(from, p), q = bpf_object__next_program(to, q), i++) {
    bpf_program__set_autoload(q, bpf_program__autoload(p));
    bpf_program__set_autoattach(q, bpf_program__autoattach(p));
    if (bpf_program__type(p) != bpf_program__type(q))
      bpf_program__set_type(q, bpf_program__type(p));
    bpf_program__set_expected_attach_type(q, bpf_program__expected_attach_type(p));
    bpf_program__set_flags(q, bpf_program__flags(p));
    bpf_program__set_log_level(q, bpf_program__log_level(p));
    if (i < s.attachTargets.size() && !s.attachTargets[i].empty())
      bpf_program__set_attach_target(q, 0, s.attachTargets[i].c_str());
    if (i < s.progIfindexes.size() && s.progIfindexes[i] != 0) bpf_program__set_ifindex(q, s.progIfindexes[i]);
  }
}

struct LogBuf {
  char* p = nullptr;
  ~LogBuf() { free(p); }
};

}  // namespace

ObjectState::~ObjectState() { Close(); }

void ObjectState::Close() {
  for (auto& g : globals)
    if (g.first != nullptr) munmap(g.first, g.second);
  globals.clear();
  if (obj != nullptr) bpf_object__close(obj);
  obj = nullptr;
  for (int fd : reuseFds)
    if (fd >= 0) close(fd);
  for (int fd : innerFds)
    if (fd >= 0) close(fd);
  reuseFds.clear();
  innerFds.clear();
  maps.clear();
  progs.clear();
  image.clear();
  image.shrink_to_fit();
}

void ObjectState::Index() {
  maps.clear();
  progs.clear();
  bpf_map* m;
  bpf_object__for_each_map(m, obj) maps.push_back(m);
  bpf_program* p;
  bpf_object__for_each_program(p, obj) progs.push_back(p);
}

// libbpf does not grow a caller's log buffer, and a bpf_object cannot be
// loaded twice. When the verifier log did not fit, the object is opened
// again from its source with the same settings and a 4x larger buffer, so
// the error carries the whole log (the reason is at its end).
bool LoadObject(ObjectState& s, Failure& f) {
  for (size_t size = kFirstLogSize;; size *= 4) {
    std::vector<LogBuf> bufs(s.progs.size());
    for (size_t i = 0; i < s.progs.size(); i++) {
      // malloc'd, not zero-filled: only the pages the verifier writes are touched
      bufs[i].p = static_cast<char*>(malloc(size));
      if (bufs[i].p == nullptr) {
        f.err = ENOMEM;
        f.op = "malloc";
        return false;
      }
      bufs[i].p[0] = '\0';
      bpf_program__set_log_buf(s.progs[i], bufs[i].p, size);
    }
    LogCapture cap;
    int err;
    {
      HoldProfilerSignal hold;
      err = bpf_object__load(s.obj);
    }
    if (err == 0) {
      s.loaded = true;
      // Kept where a log was asked for: for every program (the object's
      // kernelLogLevel) or for one (its logLevel).
      for (size_t i = 0; i < bufs.size(); i++) {
        bool wanted = s.opts.kernelLogLevel > 0 || bpf_program__log_level(s.progs[i]) > 0;
        s.progLogs.emplace_back(wanted ? bufs[i].p : "");
      }
      return true;
    }
    f = Failure();
    f.err = -err;
    f.op = "bpf_object__load";
    f.target = bpf_object__name(s.obj);
    f.log = cap.take();
    // libbpf loads programs in order and stops at the first failure, so the
    // failing program is the last one that has a log.
    ssize_t failing = -1;
    for (size_t i = 0; i < bufs.size(); i++)
      if (bufs[i].p[0] != '\0') failing = static_cast<ssize_t>(i);
    if (failing < 0) {
      s.failed = true;
      return false;
    }
    f.verifier = true;
    f.program = bpf_program__name(s.progs[failing]);
    f.verifierLog = bufs[failing].p;
    bool truncated = f.err == ENOSPC;
    if (!truncated || size * 4 > kMaxLogSize) {
      s.failed = true;
      return false;
    }
    Failure reopenFailure;
    bpf_object* fresh = Open(s, reopenFailure);
    if (fresh == nullptr) {
      s.failed = true;
      return false;
    }
    CopySettings(s, s.obj, fresh);
    bpf_object__close(s.obj);
    s.obj = fresh;
    s.Index();
  }
}

// ------------------------------------------------------------------ wrapper

Napi::Function Object::Init(Napi::Env env) {
  return DefineClass(env, "NativeObject",
                     {
                         InstanceMethod<&Object::Name>("name"),
                         InstanceMethod<&Object::Load>("load"),
                         InstanceMethod<&Object::LoadAsync>("loadAsync"),
                         InstanceMethod<&Object::Maps>("maps"),
                         InstanceMethod<&Object::Programs>("programs"),
                         InstanceMethod<&Object::Btf>("btf"),
                         InstanceMethod<&Object::Close>("close"),
                     });
}

static std::string OptString(Napi::Object o, const char* key, bool& has) {
  Napi::Value v = o.Get(key);
  has = v.IsString();
  return has ? v.As<Napi::String>().Utf8Value() : std::string();
}

Object::Object(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Object>(info) {
  Napi::Env env = info.Env();
  state_ = std::make_shared<ObjectState>();
  ObjectState& s = *state_;
  if (info[0].IsString()) {
    s.path = info[0].As<Napi::String>().Utf8Value();
  } else if (info[0].IsBuffer()) {
    auto b = info[0].As<Napi::Buffer<uint8_t>>();
    s.image.assign(b.Data(), b.Data() + b.Length());
  } else {
    ThrowState(env, "ERR_INVALID_ARG_TYPE", "source must be a path or a Buffer");
  }
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    OpenOptions& p = s.opts;
    p.name = OptString(o, "name", p.hasName);
    p.btfCustomPath = OptString(o, "btfCustomPath", p.hasBtf);
    p.pinRoot = OptString(o, "pinRoot", p.hasPinRoot);
    p.kconfig = OptString(o, "kconfig", p.hasKconfig);
    Napi::Value lvl = o.Get("kernelLogLevel");
    if (lvl.IsNumber()) p.kernelLogLevel = lvl.As<Napi::Number>().Uint32Value();
  }
  Failure f;
  s.obj = Open(s, f);
  if (s.obj == nullptr) Throw(env, f);
  s.Index();
}

ObjectState& Object::Live(Napi::Env env) {
  if (state_->obj == nullptr) ThrowState(env, "ERR_INVALID_STATE", "BpfObject is closed");
  if (state_->busy) ThrowState(env, "ERR_INVALID_STATE", "BpfObject is being loaded");
  return *state_;
}

Napi::Value Object::Name(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bpf_object__name(Live(info.Env()).obj));
}

Napi::Value Object::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectState& s = Live(env);
  if (s.loaded || s.failed) ThrowState(env, "ERR_INVALID_STATE", "BpfObject was loaded already");
  Failure f;
  if (!LoadObject(s, f)) Throw(env, f);
  return env.Undefined();
}

namespace {
class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, ObjectRef state)
      : Napi::AsyncWorker(env, "bpf_object__load"), deferred_(env), state_(std::move(state)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { ok_ = LoadObject(*state_, failure_); }
  // Both run on the JavaScript thread once the load is over. When that
  // thread is a Worker being terminated, its environment refuses every call
  // (scope, resolve, the error factory) with an exception; nobody can see
  // the promise any more, so the answer is dropped rather than let the
  // exception escape node-addon-api's callback wrapper (std::terminate).
  void OnOK() override {
    state_->busy = false;
    if (state_->closeAfterLoad) state_->Close();
    try {
      Napi::HandleScope scope(Env());
      if (ok_) {
        deferred_.Resolve(Env().Undefined());
      } else {
        deferred_.Reject(MakeError(Env(), failure_).Value());
      }
    } catch (const Napi::Error&) {
    }
  }
  void OnError(const Napi::Error& e) override {
    state_->busy = false;
    try {
      deferred_.Reject(e.Value());
    } catch (const Napi::Error&) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  ObjectRef state_;
  Failure failure_;
  bool ok_ = false;
};
}  // namespace

Napi::Value Object::LoadAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectState& s = Live(env);
  if (s.loaded || s.failed) ThrowState(env, "ERR_INVALID_STATE", "BpfObject was loaded already");
  s.busy = true;
  auto* w = new LoadWorker(env, state_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value Object::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectState& s = Live(env);
  Napi::Array a = Napi::Array::New(env, s.maps.size());
  for (size_t i = 0; i < s.maps.size(); i++) a.Set(i, Map::FromObject(env, state_, i));
  return a;
}

Napi::Value Object::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ObjectState& s = Live(env);
  Napi::Array a = Napi::Array::New(env, s.progs.size());
  for (size_t i = 0; i < s.progs.size(); i++) a.Set(i, Program::FromObject(env, state_, i));
  return a;
}

// The object's BTF as libbpf holds it (with its fixups: data section sizes
// and variable offsets), raw, for ts/btf.ts to parse; null without BTF.
Napi::Value Object::Btf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct btf* btf = bpf_object__btf(Live(env).obj);
  if (btf == nullptr) return env.Null();
  __u32 size = 0;
  const void* raw = btf__raw_data(btf, &size);
  if (raw == nullptr) ThrowErrno(env, errno, "btf__raw_data", bpf_object__name(state_->obj));
  return Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(raw), size);
}

Napi::Value Object::Close(const Napi::CallbackInfo& info) {
  // A load on a worker thread still uses the bpf_object: close when it ends.
  if (state_->busy) {
    state_->closeAfterLoad = true;
  } else {
    state_->Close();
  }
  return info.Env().Undefined();
}

}  // namespace glue
