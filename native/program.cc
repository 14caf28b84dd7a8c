// BPF programs: those of an object, and standalone ones loaded from raw
// instructions (bpf_prog_load) or opened from a pin.
#include "glue.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <new>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace glue {

namespace {

constexpr size_t kMaxLogSize = UINT32_MAX >> 2;
constexpr size_t kFirstLogSize = 1 << 20;

struct ProgramInit {
  ObjectRef owner;
  size_t index = 0;
  int fd = -1;
  std::string name;
  uint32_t type = 0;
  uint32_t insnCount = 0;
};

uint32_t U32(const Napi::Value& v, uint32_t dflt = 0) {
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : dflt;
}

}  // namespace

Napi::Function Program::Init(Napi::Env env) {
  return DefineClass(env, "NativeProgram",
                     {
                         StaticMethod<&Program::LoadInsns>("load"),
                         StaticMethod<&Program::FromPin>("fromPin"),
                         StaticMethod<&Program::FromId>("fromId"),
                         InstanceMethod<&Program::Info>("info"),
                         InstanceMethod<&Program::Set>("set"),
                         InstanceMethod<&Program::SetAutoload>("setAutoload"),
                         InstanceMethod<&Program::SetType>("setType"),
                         InstanceMethod<&Program::SetExpectedAttachType>("setExpectedAttachType"),
                         InstanceMethod<&Program::SetAttachTarget>("setAttachTarget"),
                         InstanceMethod<&Program::Attach>("attach"),
                         InstanceMethod<&Program::AttachSocket>("attachSocket"),
                         InstanceMethod<&Program::AttachKprobe>("attachKprobe"),
                         InstanceMethod<&Program::AttachKsyscall>("attachKsyscall"),
                         InstanceMethod<&Program::AttachKprobeMulti>("attachKprobeMulti"),
                         InstanceMethod<&Program::AttachUprobe>("attachUprobe"),
                         InstanceMethod<&Program::AttachUsdt>("attachUsdt"),
                         InstanceMethod<&Program::AttachTracepoint>("attachTracepoint"),
                         InstanceMethod<&Program::AttachRawTracepoint>("attachRawTracepoint"),
                         InstanceMethod<&Program::AttachPerfEvent>("attachPerfEvent"),
                         InstanceMethod<&Program::AttachXdp>("attachXdp"),
                         InstanceMethod<&Program::AttachTc>("attachTc"),
                         InstanceMethod<&Program::AttachLink>("attachLink"),
                         InstanceMethod<&Program::AttachCgroup>("attachCgroup"),
                         InstanceMethod<&Program::AttachNetns>("attachNetns"),
                         InstanceMethod<&Program::AttachProg>("attachProg"),
                         InstanceMethod<&Program::AttachIter>("attachIter"),
                         InstanceMethod<&Program::AttachNetfilter>("attachNetfilter"),
                         InstanceMethod<&Program::TestRun>("testRun"),
                         InstanceMethod<&Program::Pin>("pin"),
                         InstanceMethod<&Program::Close>("close"),
                     });
}

Program::Program(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Program>(info) {
  if (!info[0].IsExternal())
    ThrowState(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "NativeProgram is made by the library");
  ProgramInit* init = info[0].As<Napi::External<ProgramInit>>().Data();
  owner_ = init->owner;
  index_ = init->index;
  fd_ = init->fd;
  name_ = init->name;
  type_ = init->type;
  insnCount_ = init->insnCount;
}

Program::~Program() {
  if (fd_ >= 0) close(fd_);
}

Napi::Object Program::FromObject(Napi::Env env, const ObjectRef& owner, size_t index) {
  ProgramInit init;
  init.owner = owner;
  init.index = index;
  return Data(env).programCtor.New({Napi::External<ProgramInit>::New(env, &init)});
}

// load(type, insns, license, name|null, expectedAttachType, logLevel)
// The first attempt asks for no log (the common case is fast); a failure is
// retried with a log, grown on ENOSPC, so the error carries the whole of it.
Napi::Value Program::LoadInsns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t type = U32(info[0]);
  auto insns = BufferArg(info, 1, "insns");
  if (insns.Length() == 0 || insns.Length() % sizeof(bpf_insn) != 0)
    ThrowState(env, "ERR_INVALID_BUFFER_SIZE", "insns must be a non-empty multiple of 8 bytes");
  std::string license = info[2].As<Napi::String>().Utf8Value();
  std::string name = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
  uint32_t logLevel = U32(info[5]);
  size_t count = insns.Length() / sizeof(bpf_insn);

  std::string log;
  int fd = -1, err = 0;
  LogCapture cap;
  for (size_t size = kFirstLogSize;; size *= 4) {
    DECLARE_LIBBPF_OPTS(bpf_prog_load_opts, o);
    o.expected_attach_type = static_cast<bpf_attach_type>(U32(info[4]));
    std::unique_ptr<char, decltype(&free)> buf(nullptr, free);
    bool withLog = logLevel != 0 || size != kFirstLogSize || err != 0;
    if (withLog) {
      buf.reset(static_cast<char*>(malloc(size)));
      if (!buf) ThrowErrno(env, ENOMEM, "malloc");
      buf.get()[0] = '\0';
      o.log_buf = buf.get();
      o.log_size = size;
      o.log_level = logLevel ? logLevel : 1;
    }
    {
      HoldProfilerSignal hold;
      fd = bpf_prog_load(static_cast<bpf_prog_type>(type), name.empty() ? nullptr : name.c_str(),
                         license.c_str(), reinterpret_cast<const bpf_insn*>(insns.Data()), count, &o);
      err = fd < 0 ? errno : 0;
    }
    if (withLog) log = buf.get();
    if (fd >= 0) break;
    if (!withLog) {
      size /= 4;  // retry at the first size, now with a log
      continue;
    }
    // ENOSPC from BPF_PROG_LOAD means the log did not fit (since 6.4 the
    // kernel keeps its tail, but the load still fails).
    if (err == ENOSPC && size * 4 <= kMaxLogSize) continue;
    Failure f;
    f.err = err;
    f.op = "bpf_prog_load";
    f.target = name;
    f.log = cap.take();
    if (!log.empty()) {
      f.verifier = true;
      f.program = name;
      f.verifierLog = log;
    }
    Throw(env, f);
  }
  ProgramInit init;
  init.fd = fd;
  init.name = name;
  init.type = type;
  init.insnCount = count;
  Napi::Object p = Data(env).programCtor.New({Napi::External<ProgramInit>::New(env, &init)});
  if (!log.empty()) p.Set("verifierLog", log);
  return p;
}

// A wrapper owning `fd`, which must be a program's (closed on failure).
Napi::Object Program::FromOwnedFd(Napi::Env env, int fd, const char* op, const std::string& what) {
  bpf_prog_info pi;
  if (FdKind(fd) != "bpf-prog" || InfoByFd(fd, pi) != 0) {
    close(fd);
    ThrowErrno(env, EINVAL, op, what + " is not a program");
  }
  ProgramInit init;
  init.fd = fd;
  init.name = pi.name;
  init.type = pi.type;
  init.insnCount = pi.xlated_prog_len / sizeof(bpf_insn);
  return Data(env).programCtor.New({Napi::External<ProgramInit>::New(env, &init)});
}

Napi::Value Program::FromPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "bpf_obj_get", path);
  return FromOwnedFd(env, fd, "bpf_obj_get", path);
}

// fromId(id): a program of any loader, by its kernel id.
Napi::Value Program::FromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int fd = bpf_prog_get_fd_by_id(id);
  std::string what = "program id " + std::to_string(id);
  if (fd < 0) ThrowErrno(env, errno, "bpf_prog_get_fd_by_id", what);
  return FromOwnedFd(env, fd, "bpf_prog_get_fd_by_id", what);
}

bpf_program* Program::Owned(Napi::Env env, bool mustBeLoaded, bool preLoad) {
  ObjectState& s = *owner_;
  if (s.obj == nullptr) ThrowState(env, "ERR_INVALID_STATE", "the program's BpfObject is closed");
  if (s.busy) ThrowState(env, "ERR_INVALID_STATE", "the program's BpfObject is being loaded");
  if (mustBeLoaded && !s.loaded) ThrowState(env, "ERR_INVALID_STATE", "the program's BpfObject is not loaded");
  if (preLoad && (s.loaded || s.failed))
    ThrowState(env, "ERR_INVALID_STATE", "this can only change before load()");
  return s.progs[index_];
}

int Program::Fd(Napi::Env env) {
  if (!owner_) {
    if (fd_ < 0) ThrowState(env, "ERR_INVALID_STATE", "BpfProgram is closed");
    return fd_;
  }
  int fd = bpf_program__fd(Owned(env, true));
  if (fd < 0) ThrowState(env, "ERR_INVALID_STATE", "the program was not loaded (autoload off?)");
  return fd;
}

Napi::Value Program::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  int fd = -1;
  if (owner_) {
    bpf_program* p = Owned(env, false);
    o.Set("name", bpf_program__name(p));
    o.Set("section", bpf_program__section_name(p));
    o.Set("type", static_cast<uint32_t>(bpf_program__type(p)));
    o.Set("expectedAttachType", static_cast<uint32_t>(bpf_program__expected_attach_type(p)));
    o.Set("autoload", bpf_program__autoload(p));
    o.Set("autoattach", bpf_program__autoattach(p));
    o.Set("flags", bpf_program__flags(p));
    o.Set("logLevel", bpf_program__log_level(p));
    if (index_ < owner_->attachTargets.size() && !owner_->attachTargets[index_].empty())
      o.Set("attachTarget", owner_->attachTargets[index_]);
    if (index_ < owner_->progIfindexes.size()) o.Set("ifindex", owner_->progIfindexes[index_]);
    o.Set("insnCount", static_cast<double>(bpf_program__insn_cnt(p)));
    if (owner_->loaded) fd = std::max(bpf_program__fd(p), -1);
    if (index_ < owner_->progLogs.size() && !owner_->progLogs[index_].empty())
      o.Set("verifierLog", owner_->progLogs[index_]);
  } else {
    fd = Fd(env);
    o.Set("name", name_);
    o.Set("section", "");
    o.Set("type", type_);
    o.Set("insnCount", insnCount_);
  }
  o.Set("fd", fd);
  if (fd >= 0) {
    bpf_prog_info pi;
    if (InfoByFd(fd, pi) == 0) {
      o.Set("id", pi.id);
      o.Set("tag", Hex(pi.tag, sizeof(pi.tag)));
      o.Set("xlatedInsnCount", pi.xlated_prog_len / static_cast<uint32_t>(sizeof(bpf_insn)));
      o.Set("jitedBytes", pi.jited_prog_len);
      o.Set("attachBtfId", pi.attach_btf_id);
      o.Set("attachBtfObjId", pi.attach_btf_obj_id);
    }
  }
  return o;
}

Napi::Value Program::SetAutoload(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "autoload applies to programs of an object");
  bpf_program* p = Owned(env, false, true);
  int err = bpf_program__set_autoload(p, info[0].ToBoolean());
  if (err) ThrowErrno(env, err, "bpf_program__set_autoload", bpf_program__name(p));
  return env.Undefined();
}

Napi::Value Program::SetType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the type of a loaded program is fixed");
  bpf_program* p = Owned(env, false, true);
  int err = bpf_program__set_type(p, static_cast<bpf_prog_type>(U32(info[0])));
  if (err) ThrowErrno(env, err, "bpf_program__set_type", bpf_program__name(p));
  return env.Undefined();
}

Napi::Value Program::SetExpectedAttachType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the attach type of a loaded program is fixed");
  bpf_program* p = Owned(env, false, true);
  int err = bpf_program__set_expected_attach_type(p, static_cast<bpf_attach_type>(U32(info[0])));
  if (err) ThrowErrno(env, err, "bpf_program__set_expected_attach_type", bpf_program__name(p));
  return env.Undefined();
}

// testRun({data?, dataOutSize?, ctx?, ctxOutSize?, repeat?, flags?, cpu?}):
// only what the caller gave reaches the kernel (SYSCALL programs, for one,
// reject data and repeat).
Napi::Value Program::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Napi::Object a = info[0].As<Napi::Object>();
  DECLARE_LIBBPF_OPTS(bpf_test_run_opts, o);
  // Output rooms are not zero-filled (the kernel says how much it wrote),
  // and a room that cannot be had is ENOMEM, not std::bad_alloc.
  auto room = [&](uint32_t n) {
    std::unique_ptr<uint8_t[]> p(new (std::nothrow) uint8_t[n > 0 ? n : 1]);
    if (!p) ThrowErrno(env, ENOMEM, "bpf_prog_test_run_opts", "an output buffer of " + std::to_string(n) + " bytes");
    return p;
  };
  std::unique_ptr<uint8_t[]> dataOut, ctxOut;
  Napi::Value data = a.Get("data"), ctx = a.Get("ctx");
  if (data.IsBuffer()) {
    auto b = data.As<Napi::Buffer<uint8_t>>();
    o.data_in = b.Data();
    o.data_size_in = b.Length();
    o.data_size_out = U32(a.Get("dataOutSize"), b.Length());
    dataOut = room(o.data_size_out);
    o.data_out = dataOut.get();
  }
  if (ctx.IsBuffer()) {
    auto b = ctx.As<Napi::Buffer<uint8_t>>();
    o.ctx_in = b.Data();
    o.ctx_size_in = b.Length();
    uint32_t n = a.Get("ctxOutSize").IsNumber() ? U32(a.Get("ctxOutSize")) : 0;
    if (n > 0) {
      ctxOut = room(n);
      o.ctx_out = ctxOut.get();
      o.ctx_size_out = n;
    }
  }
  if (a.Get("repeat").IsNumber()) o.repeat = U32(a.Get("repeat"));
  if (a.Get("flags").IsNumber()) o.flags = U32(a.Get("flags"));
  if (a.Get("cpu").IsNumber()) o.cpu = U32(a.Get("cpu"));
  int rc, err;
  {
    // The kernel ends a repeated run with EINTR on a pending signal
    // (bpf_test_timer_continue()): see HoldProfilerSignal.
    HoldProfilerSignal hold;
    rc = bpf_prog_test_run_opts(fd, &o);
    err = errno;
  }
  if (rc != 0) {
    Failure f;
    f.err = err;
    f.op = "bpf_prog_test_run_opts";
    f.target = owner_ ? bpf_program__name(owner_->progs[index_]) : name_;
    Napi::Error e = MakeError(env, f);
    // ENOSPC: the output did not fit; the kernel says how much it needed.
    if (err == ENOSPC) e.Set("dataSizeOut", Napi::Number::New(env, o.data_size_out));
    throw e;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("retval", o.retval);
  r.Set("durationNs", o.duration);
  if (o.data_out != nullptr)
    r.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, dataOut.get(), o.data_size_out));
  if (o.ctx_out != nullptr)
    r.Set("ctxOut", Napi::Buffer<uint8_t>::Copy(env, ctxOut.get(), o.ctx_size_out));
  return r;
}

// setAttachTarget(name): the BTF target of fentry/fexit/LSM/freplace-style
// programs, instead of the one in the section (before load).
Napi::Value Program::SetAttachTarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the attach target applies to programs of an object");
  bpf_program* p = Owned(env, false, true);
  std::string name = info[0].As<Napi::String>().Utf8Value();
  LogCapture cap;
  int err = bpf_program__set_attach_target(p, 0, name.c_str());
  if (err) ThrowErrno(env, err, "bpf_program__set_attach_target", name, cap.take());
  // Kept: libbpf has no getter, and a re-opened object needs it again.
  if (owner_->attachTargets.size() < owner_->progs.size()) owner_->attachTargets.resize(owner_->progs.size());
  owner_->attachTargets[index_] = name;
  return env.Undefined();
}

// set(field, value): the other bpf_program__set_* setters, before load.
Napi::Value Program::Set(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the settings of a loaded program are fixed");
  bpf_program* p = Owned(env, false, true);
  std::string field = info[0].As<Napi::String>().Utf8Value();
  uint32_t v = info[1].IsBoolean() ? info[1].ToBoolean().Value() : U32(info[1]);
  int err = 0;
  const char* op = "";
  if (field == "flags") {
    op = "bpf_program__set_flags";
    err = bpf_program__set_flags(p, v);
  } else if (field == "logLevel") {
    op = "bpf_program__set_log_level";
    err = bpf_program__set_log_level(p, v);
  } else if (field == "autoattach") {
    bpf_program__set_autoattach(p, v != 0);
  } else if (field == "ifindex") {
    bpf_program__set_ifindex(p, v);
    if (owner_->progIfindexes.size() < owner_->progs.size()) owner_->progIfindexes.resize(owner_->progs.size(), 0);
    owner_->progIfindexes[index_] = static_cast<int>(v);
  } else {
    ThrowState(env, "ERR_INVALID_ARG_VALUE", "unknown program setting " + field);
  }
  if (err) ThrowErrno(env, err, op, bpf_program__name(p));
  return env.Undefined();
}

Napi::Value Program::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (bpf_obj_pin(fd, path.c_str()) != 0) ThrowErrno(env, errno, "bpf_obj_pin", path);
  return env.Undefined();
}

Napi::Value Program::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace glue
