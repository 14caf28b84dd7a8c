// Entry of the addon: registers the wrappers and the tables that ts/ needs
// to translate libbpf's enums to names. Policy lives in ts/.
#include "glue.h"

#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace glue {

AddonData& Data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

std::string FdKind(int fd) {
  char link[64], target[128];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof(target) - 1);
  if (n < 0) return std::string();
  target[n] = '\0';
  const char prefix[] = "anon_inode:";
  return strncmp(target, prefix, sizeof(prefix) - 1) == 0 ? std::string(target + sizeof(prefix) - 1)
                                                          : std::string();
}

namespace {

// name -> value for an enum that libbpf can name; stops at the first value
// libbpf does not know (the enums are dense).
template <typename E>
Napi::Object EnumTable(Napi::Env env, const char* (*str)(E)) {
  Napi::Object o = Napi::Object::New(env);
  for (int i = 0; i < 1024; i++) {
    const char* name = str(static_cast<E>(i));
    if (name == nullptr) break;
    o.Set(name, i);
  }
  return o;
}

// setup({makeError}): ts/errors.ts hands over the factory of its error
// classes once, so that errors thrown here are instances of them.
Napi::Value Setup(const Napi::CallbackInfo& info) {
  Napi::Object o = info[0].As<Napi::Object>();
  Data(info.Env()).makeError = Napi::Persistent(o.Get("makeError").As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), n, "libbpf_num_possible_cpus");
  return Napi::Number::New(info.Env(), n);
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallPrintCallback();
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function object = Object::Init(env);
  Napi::Function map = Map::Init(env);
  Napi::Function program = Program::Init(env);
  Napi::Function link = Link::Init(env);
  data->mapCtor = Napi::Persistent(map);
  data->programCtor = Napi::Persistent(program);
  data->linkCtor = Napi::Persistent(link);
  exports.Set("NativeObject", object);
  exports.Set("NativeMap", map);
  exports.Set("NativeProgram", program);
  exports.Set("NativeLink", link);
  exports.Set("NativeRingBuffer", RingBufferInit(env));
  exports.Set("NativePerfBuffer", PerfBufferInit(env));
  exports.Set("NativeRingMmap", RingMmapInit(env));
  exports.Set("NativeRingThread", RingThreadInit(env));
  exports.Set("NativeUserRingBuffer", UserRingBufferInit(env));
  exports.Set("setup", Napi::Function::New<Setup>(env, "setup"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
  exports.Set("openRawSocket", Napi::Function::New<OpenRawSocket>(env, "openRawSocket"));
  exports.Set("ifNameToIndex", Napi::Function::New<IfNameToIndex>(env, "ifNameToIndex"));
  exports.Set("probeType", Napi::Function::New<ProbeType>(env, "probeType"));
  exports.Set("probeFeature", Napi::Function::New<ProbeFeature>(env, "probeFeature"));
  exports.Set("perfEventOpen", Napi::Function::New<PerfEventOpen>(env, "perfEventOpen"));
  exports.Set("tcFilterCount", Napi::Function::New<TcFilterCount>(env, "tcFilterCount"));
  exports.Set("tcHookDestroy", Napi::Function::New<TcHookDestroy>(env, "tcHookDestroy"));
  InitInfo(env, exports);
  InitTcQuery(env, exports);
  InitPrint(env, exports);
  InitTracePipe(env, exports);
  exports.Set("mapTypes", EnumTable<bpf_map_type>(env, libbpf_bpf_map_type_str));
  exports.Set("progTypes", EnumTable<bpf_prog_type>(env, libbpf_bpf_prog_type_str));
  exports.Set("attachTypes", EnumTable<bpf_attach_type>(env, libbpf_bpf_attach_type_str));
  exports.Set("linkTypes", EnumTable<bpf_link_type>(env, libbpf_bpf_link_type_str));
  char version[32];
  snprintf(version, sizeof(version), "%u.%u", libbpf_major_version(), libbpf_minor_version());
  exports.Set("libbpfVersion", version);
  return exports;
}

}  // namespace glue

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return glue::Init(env, exports); }

NODE_API_MODULE(bpf_glue, InitAddon)
