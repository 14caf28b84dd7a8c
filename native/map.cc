// BPF maps: those of an object (resolved through the object's state) and
// standalone ones (bpf_map_create, a pin). Element operations go through the
// fd, so both kinds share them. Buffers are sized by the caller (ts/map.ts);
// the checks here only keep a wrong size from reading past a buffer.
#include "glue.h"

#include <bpf/btf.h>

#include <sys/mman.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <climits>
#include <fcntl.h>
#include <unistd.h>

namespace glue {

namespace {

struct MapInit {
  ObjectRef owner;
  size_t index = 0;
  int fd = -1;
  uint32_t keySize = 0, valueBytes = 0;
  std::string name;
};

bool IsPerCpu(uint32_t type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

// Bytes the kernel copies for one value: per-CPU maps hold one 8-byte
// aligned slot per possible CPU.
uint32_t ValueBytes(uint32_t type, uint32_t valueSize) {
  if (!IsPerCpu(type)) return valueSize;
  int n = libbpf_num_possible_cpus();
  return ((valueSize + 7) / 8 * 8) * (n > 0 ? n : 1);
}


}  // namespace

Napi::Function Map::Init(Napi::Env env) {
  return DefineClass(env, "NativeMap",
                     {
                         StaticMethod<&Map::Create>("create"),
                         StaticMethod<&Map::FromPin>("fromPin"),
                         StaticMethod<&Map::FromId>("fromId"),
                         StaticMethod<&Map::ScratchOps>("scratchOps"),
                         InstanceMethod<&Map::Info>("info"),
                         InstanceMethod<&Map::SetMaxEntries>("setMaxEntries"),
                         InstanceMethod<&Map::Set>("set"),
                         InstanceMethod<&Map::SetInnerMapFd>("setInnerMapFd"),
                         InstanceMethod<&Map::ReuseFd>("reuseFd"),
                         InstanceMethod<&Map::Lookup>("lookup"),
                         InstanceMethod<&Map::Update>("update"),
                         InstanceMethod<&Map::Delete>("delete"),
                         InstanceMethod<&Map::LookupAndDelete>("lookupAndDelete"),
                         InstanceMethod<&Map::NextKey>("nextKey"),
                         InstanceMethod<&Map::LookupBatch>("lookupBatch"),
                         InstanceMethod<&Map::UpdateBatch>("updateBatch"),
                         InstanceMethod<&Map::DeleteBatch>("deleteBatch"),
                         InstanceMethod<&Map::EachElem>("eachElem"),
                         InstanceMethod<&Map::Scratch>("scratch"),
                         InstanceMethod<&Map::Memory>("memory"),
                         InstanceMethod<&Map::DetachMemory>("detachMemory"),
                         InstanceMethod<&Map::ReadGlobal>("readGlobal"),
                         InstanceMethod<&Map::WriteGlobal>("writeGlobal"),
                         InstanceMethod<&Map::Freeze>("freeze"),
                         InstanceMethod<&Map::Btf>("btf"),
                         InstanceMethod<&Map::Pin>("pin"),
                         InstanceMethod<&Map::Close>("close"),
                         InstanceMethod<&Map::AttachStructOps>("attachStructOps"),
                     });
}

Map::Map(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Map>(info) {
  if (!info[0].IsExternal())
    ThrowState(info.Env(), "ERR_ILLEGAL_CONSTRUCTOR", "NativeMap is made by the library");
  MapInit* init = info[0].As<Napi::External<MapInit>>().Data();
  owner_ = init->owner;
  index_ = init->index;
  fd_ = init->fd;
  keySize_ = init->keySize;
  valueBytes_ = init->valueBytes;
  name_ = init->name;
}

Map::~Map() {
  if (fd_ >= 0) close(fd_);
  if (scratchTable_) {
    scratchTable_->maps[scratchSlot_] = nullptr;
    scratchTable_->freeSlots.push_back(scratchSlot_);
  }
}

Napi::Object Map::FromObject(Napi::Env env, const ObjectRef& owner, size_t index) {
  MapInit init;
  init.owner = owner;
  init.index = index;
  return Data(env).mapCtor.New({Napi::External<MapInit>::New(env, &init)});
}

Napi::Object Map::FromOwnedFd(Napi::Env env, int fd) {
  bpf_map_info mi;
  if (InfoByFd(fd, mi) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "bpf_obj_get_info_by_fd");
  }
  MapInit init;
  init.fd = fd;
  init.keySize = mi.key_size;
  init.valueBytes = ValueBytes(mi.type, mi.value_size);
  init.name = mi.name;
  return Data(env).mapCtor.New({Napi::External<MapInit>::New(env, &init)});
}

// create(type, name|null, keySize, valueSize, maxEntries, flags)
Napi::Value Map::Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DECLARE_LIBBPF_OPTS(bpf_map_create_opts, o);
  o.map_flags = info[5].As<Napi::Number>().Uint32Value();
  std::string name = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : std::string();
  LogCapture cap;
  int fd = bpf_map_create(static_cast<bpf_map_type>(info[0].As<Napi::Number>().Uint32Value()),
                          name.empty() ? nullptr : name.c_str(),
                          info[2].As<Napi::Number>().Uint32Value(),
                          info[3].As<Napi::Number>().Uint32Value(),
                          info[4].As<Napi::Number>().Uint32Value(), &o);
  if (fd < 0) ThrowErrno(env, errno, "bpf_map_create", name, cap.take());
  return FromOwnedFd(env, fd);
}

Napi::Value Map::FromPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(env, errno, "bpf_obj_get", path);
  if (FdKind(fd) != "bpf-map") {
    close(fd);
    ThrowErrno(env, EINVAL, "bpf_obj_get", path + " is not a pinned map");
  }
  return FromOwnedFd(env, fd);
}

// fromId(id): a map of any loader, by its kernel id (bpf_map_get_fd_by_id);
// the fd is this wrapper's.
Napi::Value Map::FromId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  int fd = bpf_map_get_fd_by_id(id);
  if (fd < 0) ThrowErrno(env, errno, "bpf_map_get_fd_by_id", "map id " + std::to_string(id));
  return FromOwnedFd(env, fd);
}

bpf_map* Map::Owned(Napi::Env env, bool mustBeLoaded) {
  ObjectState& s = *owner_;
  if (s.obj == nullptr) ThrowState(env, "ERR_INVALID_STATE", "the map's BpfObject is closed");
  if (s.busy) ThrowState(env, "ERR_INVALID_STATE", "the map's BpfObject is being loaded");
  if (mustBeLoaded && !s.loaded) ThrowState(env, "ERR_INVALID_STATE", "the map's BpfObject is not loaded");
  return s.maps[index_];
}

int Map::Fd(Napi::Env env) {
  if (!owner_) {
    if (fd_ < 0) ThrowState(env, "ERR_INVALID_STATE", "BpfMap is closed");
    return fd_;
  }
  bpf_map* m = Owned(env, true);
  int fd = bpf_map__fd(m);
  // libbpf 1.3+ gives an uncreated map a placeholder fd, which is no map.
  if (fd < 0 || !bpf_map__autocreate(m)) ThrowState(env, "ERR_INVALID_STATE", "the map was not created (autocreate off?)");
  return fd;
}

// The raw BTF the kernel holds for a map that is not ours (a pin, made by
// another loader), for ts/btf.ts to parse; null when it has none.
Napi::Value Map::Btf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_map_info mi;
  if (InfoByFd(Fd(env), mi) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
  if (mi.btf_id == 0) return env.Null();
  LogCapture log;
  struct btf* btf = btf__load_from_kernel_by_id(mi.btf_id);
  if (btf == nullptr) {
    int err = errno;
    ThrowErrno(env, err, "btf__load_from_kernel_by_id", mi.name, log.take());
  }
  uint32_t size = 0;
  const void* raw = btf__raw_data(btf, &size);
  if (raw == nullptr) {
    int err = errno;
    btf__free(btf);
    ThrowErrno(env, err, "btf__raw_data", mi.name);
  }
  Napi::Buffer<uint8_t> out = Napi::Buffer<uint8_t>::Copy(env, static_cast<const uint8_t*>(raw), size);
  btf__free(btf);
  return out;
}

Napi::Value Map::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  uint32_t type, keySize, valueSize, id = 0;
  int fd = -1;
  if (owner_) {
    bpf_map* m = Owned(env, false);
    type = bpf_map__type(m);
    keySize = bpf_map__key_size(m);
    valueSize = bpf_map__value_size(m);
    o.Set("name", bpf_map__name(m));
    o.Set("maxEntries", bpf_map__max_entries(m));
    o.Set("flags", bpf_map__map_flags(m));
    o.Set("ifindex", bpf_map__ifindex(m));
    o.Set("btfKeyTypeId", bpf_map__btf_key_type_id(m));
    o.Set("btfValueTypeId", bpf_map__btf_value_type_id(m));
    o.Set("internal", bpf_map__is_internal(m));
    o.Set("numaNode", bpf_map__numa_node(m));
    o.Set("mapExtra", Napi::BigInt::New(env, static_cast<uint64_t>(bpf_map__map_extra(m))));
    o.Set("autocreate", bpf_map__autocreate(m));
    o.Set("innerMapSet", index_ < owner_->innerFds.size() && owner_->innerFds[index_] >= 0);
    o.Set("reused", index_ < owner_->reuseFds.size() && owner_->reuseFds[index_] >= 0);
    const char* pin = bpf_map__pin_path(m);
    if (pin != nullptr) o.Set("pinPath", pin);
    if (owner_->loaded) fd = std::max(bpf_map__fd(m), -1);
    bpf_map_info mi;
    if (fd >= 0 && InfoByFd(fd, mi) == 0) {
      id = mi.id;
      o.Set("mapExtra", Napi::BigInt::New(env, static_cast<uint64_t>(mi.map_extra)));
    }
  } else {
    fd = Fd(env);
    bpf_map_info mi;
    if (InfoByFd(fd, mi) != 0) ThrowErrno(env, errno, "bpf_obj_get_info_by_fd");
    type = mi.type;
    keySize = mi.key_size;
    valueSize = mi.value_size;
    o.Set("name", mi.name);
    o.Set("maxEntries", mi.max_entries);
    o.Set("flags", mi.map_flags);
    o.Set("ifindex", mi.ifindex);
    o.Set("btfKeyTypeId", mi.btf_key_type_id);
    o.Set("btfValueTypeId", mi.btf_value_type_id);
    o.Set("internal", false);
    o.Set("mapExtra", Napi::BigInt::New(env, static_cast<uint64_t>(mi.map_extra)));
    id = mi.id;
  }
  o.Set("type", type);
  o.Set("keySize", keySize);
  o.Set("valueSize", valueSize);
  o.Set("valueBytes", ValueBytes(type, valueSize));
  o.Set("fd", fd);
  o.Set("id", id);
  return o;
}

Napi::Value Map::SetMaxEntries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "maxEntries is fixed once a map exists");
  bpf_map* m = Owned(env, false);
  if (owner_->loaded) ThrowState(env, "ERR_INVALID_STATE", "maxEntries can only change before load()");
  int err = bpf_map__set_max_entries(m, info[0].As<Napi::Number>().Uint32Value());
  if (err) ThrowErrno(env, err, "bpf_map__set_max_entries", bpf_map__name(m));
  return env.Undefined();
}

// set(field, value): the bpf_map__set_* setters of a map of an object, before
// load. ts/map.ts checks the value's type and range.
Napi::Value Map::Set(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the settings of an existing map are fixed");
  bpf_map* m = Owned(env, false);
  if (owner_->loaded || owner_->failed) ThrowState(env, "ERR_INVALID_STATE", "map settings can only change before load()");
  std::string field = info[0].As<Napi::String>().Utf8Value();
  Napi::Value v = info[1];
  auto u32 = [&]() { return v.As<Napi::Number>().Uint32Value(); };
  int err = 0;
  const char* op = "";
  LogCapture cap;
  if (field == "type") {
    op = "bpf_map__set_type";
    err = bpf_map__set_type(m, static_cast<bpf_map_type>(u32()));
  } else if (field == "keySize") {
    op = "bpf_map__set_key_size";
    err = bpf_map__set_key_size(m, u32());
  } else if (field == "valueSize") {
    op = "bpf_map__set_value_size";
    err = bpf_map__set_value_size(m, u32());
  } else if (field == "flags") {
    op = "bpf_map__set_map_flags";
    err = bpf_map__set_map_flags(m, u32());
  } else if (field == "numaNode") {
    op = "bpf_map__set_numa_node";
    err = bpf_map__set_numa_node(m, u32());
  } else if (field == "ifindex") {
    op = "bpf_map__set_ifindex";
    err = bpf_map__set_ifindex(m, u32());
  } else if (field == "mapExtra") {
    bool lossless = false;
    op = "bpf_map__set_map_extra";
    err = bpf_map__set_map_extra(m, v.As<Napi::BigInt>().Uint64Value(&lossless));
  } else if (field == "autocreate") {
    op = "bpf_map__set_autocreate";
    err = bpf_map__set_autocreate(m, v.ToBoolean());
  } else if (field == "pinPath") {
    op = "bpf_map__set_pin_path";
    std::string path = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
    err = bpf_map__set_pin_path(m, v.IsString() ? path.c_str() : nullptr);
  } else {
    ThrowState(env, "ERR_INVALID_ARG_VALUE", "unknown map setting " + field);
  }
  if (err) ThrowErrno(env, err, op, bpf_map__name(m), cap.take());
  return env.Undefined();
}

namespace {
// A dup of `fd` stored at `slot` of `fds` (grown to the object's maps).
int KeepDup(Napi::Env env, std::vector<int>& fds, size_t slot, size_t count, int fd, const char* what) {
  if (fds.size() < count) fds.resize(count, -1);
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) ThrowErrno(env, errno, "fcntl", what);
  if (fds[slot] >= 0) close(fds[slot]);
  fds[slot] = dup;
  return dup;
}
}  // namespace

// setInnerMapFd(fd): the template of a map-in-map's inner maps. libbpf keeps
// the fd without owning it, so a dup of it lives as long as the object.
Napi::Value Map::SetInnerMapFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "the inner map of an existing map is fixed");
  bpf_map* m = Owned(env, false);
  if (owner_->loaded || owner_->failed) ThrowState(env, "ERR_INVALID_STATE", "innerMap can only change before load()");
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (index_ < owner_->innerFds.size() && owner_->innerFds[index_] >= 0)
    ThrowState(env, "ERR_INVALID_STATE", std::string("map '") + bpf_map__name(m) + "' has its innerMap already (libbpf takes one)");
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) ThrowErrno(env, errno, "fcntl", bpf_map__name(m));
  LogCapture cap;
  int err = bpf_map__set_inner_map_fd(m, dup);
  if (err) {
    close(dup);
    ThrowErrno(env, err, "bpf_map__set_inner_map_fd", bpf_map__name(m), cap.take());
  }
  if (owner_->innerFds.size() < owner_->maps.size()) owner_->innerFds.resize(owner_->maps.size(), -1);
  owner_->innerFds[index_] = dup;
  return env.Undefined();
}

// reuseFd(fd): the object uses an existing map instead of creating one
// (bpf_map__reuse_fd, which takes its own dup and the map's definition).
Napi::Value Map::ReuseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "reuseFd applies to a map of an object");
  bpf_map* m = Owned(env, false);
  if (owner_->loaded || owner_->failed) ThrowState(env, "ERR_INVALID_STATE", "reuseFd can only be called before load()");
  int fd = info[0].As<Napi::Number>().Int32Value();
  std::string name = bpf_map__name(m);
  LogCapture cap;
  int err = bpf_map__reuse_fd(m, fd);
  if (err) ThrowErrno(env, err, "bpf_map__reuse_fd", name, cap.take());
  KeepDup(env, owner_->reuseFds, index_, owner_->maps.size(), fd, name.c_str());
  return env.Undefined();
}

// Sizes as the kernel sees them, without a syscall: libbpf knows them for a
// map of an object, and a standalone map caches them when it is opened.
Map::Sizes Map::SizesOf(Napi::Env env) {
  if (!owner_) return Sizes{keySize_, valueBytes_, name_.c_str()};
  bpf_map* m = Owned(env, true);
  return Sizes{bpf_map__key_size(m), ValueBytes(bpf_map__type(m), bpf_map__value_size(m)),
               bpf_map__name(m)};
}

namespace {


void* KeyPtr(const Napi::CallbackInfo& info, size_t i, const Map::Sizes& s) {
  Napi::Env env = info.Env();
  if (info[i].IsNull() || info[i].IsUndefined()) {
    if (s.key != 0) ThrowState(env, "ERR_INVALID_ARG_TYPE", "key must be a Buffer");
    return nullptr;
  }
  auto b = BufferArg(info, i, "key");
  if (b.Length() != s.key) {
    Napi::Error e = Napi::RangeError::New(env, "key must be " + std::to_string(s.key) + " bytes");
    e.Set("code", "ERR_INVALID_BUFFER_SIZE");
    throw e;
  }
  return s.key ? b.Data() : nullptr;
}

void* ValuePtr(const Napi::CallbackInfo& info, size_t i, const Map::Sizes& s) {
  auto b = BufferArg(info, i, "value");
  if (b.Length() != s.value) {
    Napi::Error e = Napi::RangeError::New(info.Env(), "value must be " + std::to_string(s.value) + " bytes");
    e.Set("code", "ERR_INVALID_BUFFER_SIZE");
    throw e;
  }
  return b.Data();
}
}  // namespace

// Element operations return false for "no such element" (ENOENT) rather
// than throwing: a miss is an answer, not an error.
Napi::Value Map::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* key = KeyPtr(info, 0, s);
  void* out = ValuePtr(info, 1, s);
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  int err = bpf_map_lookup_elem_flags(fd, key, out, flags);
  if (err == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "bpf_map_lookup_elem", s.name);
}

Napi::Value Map::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* key = KeyPtr(info, 0, s);
  void* value = ValuePtr(info, 1, s);
  uint64_t flags = info[2].IsNumber() ? info[2].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(fd, key, value, flags) != 0)
    ThrowErrno(env, errno, "bpf_map_update_elem", s.name);
  return env.Undefined();
}

Napi::Value Map::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* key = KeyPtr(info, 0, s);
  if (bpf_map_delete_elem(fd, key) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "bpf_map_delete_elem", s.name);
}

Napi::Value Map::LookupAndDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* key = KeyPtr(info, 0, s);
  void* out = ValuePtr(info, 1, s);
  if (bpf_map_lookup_and_delete_elem(fd, key, out) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "bpf_map_lookup_and_delete_elem", s.name);
}

Napi::Value Map::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* key = info[0].IsNull() ? nullptr : KeyPtr(info, 0, s);
  auto out = BufferArg(info, 1, "next key");
  if (out.Length() != s.key) ThrowState(env, "ERR_INVALID_BUFFER_SIZE", "next key buffer has the wrong size");
  if (bpf_map_get_next_key(fd, key, out.Data()) == 0) return Napi::Boolean::New(env, true);
  if (errno == ENOENT) return Napi::Boolean::New(env, false);
  ThrowErrno(env, errno, "bpf_map_get_next_key", s.name);
}

// lookupBatch(inToken | null, outToken, keys, values, count, del) -> [count, done]
// (bpf_map_lookup_batch, or bpf_map_lookup_and_delete_batch with `del`).
// The token is opaque: a bucket index for hash maps, a key for arrays, so it
// needs max(keySize, 4) bytes.
Napi::Value Map::LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  void* in = info[0].IsNull() ? nullptr : BufferArg(info, 0, "in batch").Data();
  auto out = BufferArg(info, 1, "out batch");
  auto keys = BufferArg(info, 2, "keys");
  auto values = BufferArg(info, 3, "values");
  uint32_t count = info[4].As<Napi::Number>().Uint32Value();
  bool del = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  if (out.Length() < std::max<size_t>(s.key, 4) || keys.Length() < static_cast<size_t>(count) * s.key ||
      values.Length() < static_cast<size_t>(count) * s.value)
    ThrowState(env, "ERR_INVALID_BUFFER_SIZE", "batch buffers are too small");
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, o);
  bool done = false;
  int rc = del ? bpf_map_lookup_and_delete_batch(fd, in, out.Data(), keys.Data(), values.Data(), &count, &o)
               : bpf_map_lookup_batch(fd, in, out.Data(), keys.Data(), values.Data(), &count, &o);
  if (rc != 0) {
    if (errno != ENOENT) ThrowErrno(env, errno, del ? "bpf_map_lookup_and_delete_batch" : "bpf_map_lookup_batch", s.name);
    done = true;  // ENOENT: the last elements are in this batch
  }
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, count);
  r.Set(1u, done);
  return r;
}

namespace {
void CheckBatch(Napi::Env env, const Napi::Buffer<uint8_t>& b, size_t count, size_t size, const char* what) {
  if (b.Length() < count * size)
    ThrowState(env, "ERR_INVALID_BUFFER_SIZE", std::string(what) + " buffer is too small for the batch");
}
}  // namespace

// updateBatch(keys, values, count, flags) -> count (bpf_map_update_batch).
// The kernel stops at the first element it refuses; that error is thrown.
Napi::Value Map::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  auto keys = BufferArg(info, 0, "keys");
  auto values = BufferArg(info, 1, "values");
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  CheckBatch(env, keys, count, s.key, "keys");
  CheckBatch(env, values, count, s.value, "values");
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, o, .elem_flags = static_cast<uint64_t>(info[3].As<Napi::Number>().Int64Value()));
  if (bpf_map_update_batch(fd, keys.Data(), values.Data(), &count, &o) != 0)
    ThrowErrno(env, errno, "bpf_map_update_batch", s.name);
  return Napi::Number::New(env, count);
}

// deleteBatch(keys, count) -> [processed, missing] (bpf_map_delete_batch).
// The kernel stops at the first key that is not there (ENOENT): `missing`
// says so, and `processed` keys before it were deleted; ts/map.ts goes on
// after it. Other errors are thrown.
Napi::Value Map::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  auto keys = BufferArg(info, 0, "keys");
  uint32_t count = info[1].As<Napi::Number>().Uint32Value();
  CheckBatch(env, keys, count, s.key, "keys");
  DECLARE_LIBBPF_OPTS(bpf_map_batch_opts, o);
  bool missing = false;
  if (bpf_map_delete_batch(fd, keys.Data(), &count, &o) != 0) {
    if (errno != ENOENT) ThrowErrno(env, errno, "bpf_map_delete_batch", s.name);
    missing = true;
  }
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, count);
  r.Set(1u, missing);
  return r;
}

// eachElem(op, keys | null, values | null, count, flags, found | null) -> count
// One element syscall per key in a single call from JavaScript: the batch
// API's form where the kernel or the map type has no batch operations.
// op: 0 lookup, 1 update, 2 delete, 3 lookup_and_delete. For lookups and
// deletes a missing key is an answer (found[i] = 0); any other error is
// thrown, after the elements before it were done.
Napi::Value Map::EachElem(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  Sizes s = SizesOf(env);
  uint32_t op = info[0].As<Napi::Number>().Uint32Value();
  uint32_t count = info[3].As<Napi::Number>().Uint32Value();
  uint64_t flags = static_cast<uint64_t>(info[4].As<Napi::Number>().Int64Value());
  uint8_t* keys = nullptr;
  uint8_t* values = nullptr;
  uint8_t* found = nullptr;
  if (s.key != 0) {
    auto k = BufferArg(info, 1, "keys");
    CheckBatch(env, k, count, s.key, "keys");
    keys = k.Data();
  }
  if (op != 2) {
    auto v = BufferArg(info, 2, "values");
    CheckBatch(env, v, count, s.value, "values");
    values = v.Data();
  }
  if (!info[5].IsNull()) {
    auto f = BufferArg(info, 5, "found");
    CheckBatch(env, f, count, 1, "found");
    found = f.Data();
  }
  static const char* const ops[] = {"bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_map_delete_elem",
                                    "bpf_map_lookup_and_delete_elem"};
  if (op > 3) ThrowState(env, "ERR_INVALID_ARG_VALUE", "unknown element operation");
  for (uint32_t i = 0; i < count; i++) {
    void* k = keys ? keys + static_cast<size_t>(i) * s.key : nullptr;
    void* v = values ? values + static_cast<size_t>(i) * s.value : nullptr;
    int rc;
    switch (op) {
      case 0: rc = bpf_map_lookup_elem_flags(fd, k, v, flags); break;
      case 1: rc = bpf_map_update_elem(fd, k, v, flags); break;
      case 2: rc = bpf_map_delete_elem(fd, k); break;
      default: rc = bpf_map_lookup_and_delete_elem(fd, k, v); break;
    }
    if (rc == 0) {
      if (found) found[i] = 1;
    } else if (errno == ENOENT && op != 1) {
      if (found) found[i] = 0;
    } else {
      ThrowErrno(env, errno, ops[op], s.name);
    }
  }
  return Napi::Number::New(env, count);
}

// The per-op fast path. One ArrayBuffer per map holds a key and a value
// (scratch(valueOffset, size, hasKey, nextOffset, ctlOffset) -> [buffer,
// slot], with room for the next key of an iteration at nextOffset, and two
// u32 control words at ctlOffset); JavaScript writes the key (and the op's
// flags) into it and the map's slot into the shared slot word, calls a
// scratchOps() function with no arguments, and reads the result and the
// value out. What the user receives is always a copy made in JavaScript (or
// a decoded value): the scratch never leaves ts/map.ts. The ArrayBuffer is
// allocated by V8 outside its heap, so its address is stable; the reference
// keeps it alive as long as this wrapper.
Napi::Value Map::Scratch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t valueOffset = info[0].As<Napi::Number>().Uint32Value();
  uint32_t size = info[1].As<Napi::Number>().Uint32Value();
  uint32_t nextOffset = info[3].As<Napi::Number>().Uint32Value();
  uint32_t ctlOffset = info[4].As<Napi::Number>().Uint32Value();
  // The kernel writes a whole value (and key) there: the layout must hold them.
  Sizes sz = SizesOf(env);
  if (valueOffset < sz.key || static_cast<uint64_t>(valueOffset) + sz.value > ctlOffset ||
      (nextOffset < ctlOffset && static_cast<uint64_t>(nextOffset) + sz.key > ctlOffset) ||
      ctlOffset % 4 != 0 || static_cast<uint64_t>(ctlOffset) + 8 > size)
    ThrowState(env, "ERR_OUT_OF_RANGE", "scratch too small for the map's key and value");
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, size);
  scratchRef_ = Napi::Persistent(ab);
  scratchKey_ = static_cast<uint8_t*>(ab.Data());
  scratchValue_ = scratchKey_ + valueOffset;
  scratchNext_ = nextOffset < ctlOffset ? scratchKey_ + nextOffset : nullptr;
  scratchCtl_ = reinterpret_cast<uint32_t*>(scratchKey_ + ctlOffset);
  scratchHasKey_ = info[2].ToBoolean();
  if (!scratchTable_) {
    scratchTable_ = Data(env).scratch;
    ScratchTable& t = *scratchTable_;
    if (t.freeSlots.empty()) {
      scratchSlot_ = static_cast<uint32_t>(t.maps.size());
      t.maps.push_back(this);
    } else {
      scratchSlot_ = t.freeSlots.back();
      t.freeSlots.pop_back();
      t.maps[scratchSlot_] = this;
    }
  }
  Napi::Array r = Napi::Array::New(env, 2);
  r.Set(0u, ab);
  r.Set(1u, Napi::Number::New(env, scratchSlot_));
  return r;
}

// One scratch op; its result (1 done or found, 0 not found) goes to the
// second control word. The argument in the first: the flags of a lookup
// or an update, for nextKey whether to start from the scratch's key.
template <Map::ScratchOp Op>
int Map::ScratchCall(Napi::Env env) {
  int fd = Fd(env);
  void* key = scratchHasKey_ ? scratchKey_ : nullptr;
  uint32_t arg = scratchCtl_[0];
  int r;
  const char* op;
  switch (Op) {
    case ScratchOp::kLookup:
      r = bpf_map_lookup_elem_flags(fd, key, scratchValue_, arg);
      op = "bpf_map_lookup_elem";
      break;
    case ScratchOp::kUpdate:
      r = bpf_map_update_elem(fd, key, scratchValue_, arg);
      op = "bpf_map_update_elem";
      break;
    case ScratchOp::kDelete:
      r = bpf_map_delete_elem(fd, key);
      op = "bpf_map_delete_elem";
      break;
    case ScratchOp::kLookupAndDelete:
      r = bpf_map_lookup_and_delete_elem(fd, key, scratchValue_);
      op = "bpf_map_lookup_and_delete_elem";
      break;
    case ScratchOp::kNextKey:
      if (scratchNext_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "no next key bytes in the scratch");
      r = bpf_map_get_next_key(fd, arg != 0 ? key : nullptr, scratchNext_);
      op = "bpf_map_get_next_key";
      break;
  }
  if (r == 0) return 1;
  if (errno == ENOENT && Op != ScratchOp::kUpdate) return 0;
  ThrowErrno(env, errno, op, SizesOf(env).name);
}

// The scratch ops as plain Node-API callbacks, one of each for all maps
// (made once by scratchOps()): the map is the one whose slot JavaScript
// wrote into the slot word. One function per op rather than one per map
// and op keeps every call site in ts/map.ts monomorphic: with a function
// per map, V8 could not inline the API call once a process used several
// maps, which cost 150-200 ns per op. No receiver to unwrap (napi_unwrap
// is a private property lookup through the V8 runtime), no argument to
// convert and no value to make (the result goes through the scratch, the
// call returns undefined): one napi_get_cb_info is all the Node-API a call
// costs. A map leaves its slot when its wrapper is collected, and
// ts/map.ts keeps the wrapper alive while the scratch is in use, so a slot
// written there always names its own map. (Nothing on the stack holds the
// wrapper during a call: that is safe because Node runs Node-API
// finalizers after the current JavaScript, never inside a call.)
template <Map::ScratchOp Op>
napi_value Map::RunScratch(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  if (napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data) != napi_ok) return nullptr;
  ScratchTable& t = *static_cast<ScratchTable*>(data);
  uint32_t slot = *t.slot;
  Map* self = slot < t.maps.size() ? t.maps[slot] : nullptr;
  try {
    if (self == nullptr) ThrowState(Napi::Env(env), "ERR_INVALID_STATE", "no map in scratch slot " + std::to_string(slot));
    self->scratchCtl_[1] = static_cast<uint32_t>(self->ScratchCall<Op>(Napi::Env(env)));
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  }
  return nullptr;
}

// NativeMap.scratchOps() -> [slot word (ArrayBuffer of one u32), lookup,
// update, delete, lookupAndDelete, nextKey]. Called once per addon
// instance (ts/map.ts keeps them); the table outlives every call, as the
// addon data holds it.
Napi::Value Map::ScratchOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData& d = Data(env);
  if (d.scratchSlot.IsEmpty()) {
    Napi::ArrayBuffer word = Napi::ArrayBuffer::New(env, sizeof(uint32_t));
    d.scratch->slot = static_cast<uint32_t*>(word.Data());
    d.scratchSlot = Napi::Persistent(word);
  }
  Napi::Array ops = Napi::Array::New(env, 6);
  ops.Set(0u, d.scratchSlot.Value());
  const std::pair<const char*, napi_callback> fns[] = {
      {"lookup", &Map::RunScratch<ScratchOp::kLookup>},
      {"update", &Map::RunScratch<ScratchOp::kUpdate>},
      {"delete", &Map::RunScratch<ScratchOp::kDelete>},
      {"lookupAndDelete", &Map::RunScratch<ScratchOp::kLookupAndDelete>},
      {"nextKey", &Map::RunScratch<ScratchOp::kNextKey>}};
  uint32_t i = 1;
  for (const auto& [name, cb] : fns) {
    napi_value fn;
    NAPI_THROW_IF_FAILED(env, napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, d.scratch.get(), &fn), Napi::Value());
    ops.Set(i++, Napi::Value(env, fn));
  }
  return ops;
}

namespace {
struct Mapping {
  void* addr;
  size_t len;
};
}  // namespace

// memory(bytes) -> ArrayBuffer over the map's memory (mmap of a
// BPF_F_MMAPABLE array, read-write, shared with the programs). ts/map.ts
// checks the map type and works out `bytes`. The ArrayBuffer owns the
// mapping: it is unmapped in its finalizer, never while JavaScript can
// reach it. A mapping holds its own reference on the kernel map, so
// closing the fd (or the object) leaves the memory valid; ts/map.ts detaches
// the ArrayBuffer at close so that user views stop working instead.
// Read-only maps (a loaded .rodata, frozen maps, BPF_F_RDONLY) refuse a
// writable mapping (EPERM), which is thrown: a read-only ArrayBuffer does
// not exist, and a write to a read-only page would kill the process.
Napi::Value Map::Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  size_t bytes = static_cast<size_t>(info[0].As<Napi::Number>().Int64Value());
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t len = (std::max<size_t>(bytes, 1) + page - 1) / page * page;
  void* addr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap", SizesOf(env).name);
  auto* m = new Mapping{addr, len};
  return Napi::ArrayBuffer::New(env, addr, bytes, [](Napi::Env, void*, Mapping* m) {
    munmap(m->addr, m->len);
    delete m;
  }, m);
}

// detachMemory(arrayBuffer): every view over it reads as empty from now on
// (DataView accessors throw); the pages are unmapped once it is collected.
Napi::Value Map::DetachMemory(const Napi::CallbackInfo& info) {
  Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
  if (!ab.IsDetached()) ab.Detach();
  return info.Env().Undefined();
}

// Global variables (.data, .bss, .rodata, .data.*): before load, libbpf's
// initial value; after load, the map's memory mapping, shared with the
// programs, so reads and writes are plain memory accesses. A loaded
// .rodata is mapped read-only: writing it is refused here, not faulted.
uint8_t* Map::GlobalBytes(Napi::Env env, size_t offset, size_t size, bool write) {
  if (!owner_) ThrowState(env, "ERR_INVALID_STATE", "global variables belong to a map of an object");
  bpf_map* m = Owned(env, false);
  ObjectState& s = *owner_;
  bool rodata = (bpf_map__map_flags(m) & BPF_F_RDONLY_PROG) != 0;
  size_t total = 0;
  uint8_t* p = nullptr;
  if (!s.loaded) {
    p = static_cast<uint8_t*>(const_cast<void*>(bpf_map__initial_value(m, &total)));
  } else {
    // libbpf before 1.4 keeps its own copy after load (only skeletons remap
    // it), so the map is mapped here: the memory the programs use.
    if (s.globals.size() < s.maps.size()) s.globals.resize(s.maps.size(), {nullptr, 0});
    auto& g = s.globals[index_];
    if (g.first == nullptr && (bpf_map__map_flags(m) & BPF_F_MMAPABLE) && bpf_map__fd(m) >= 0) {
      size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      size_t len = (static_cast<size_t>(bpf_map__value_size(m)) + page - 1) / page * page;
      void* addr = mmap(nullptr, len, PROT_READ | (rodata ? 0 : PROT_WRITE), MAP_SHARED, bpf_map__fd(m), 0);
      if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap", bpf_map__name(m));
      g = {addr, len};
    }
    p = static_cast<uint8_t*>(g.first);
    total = bpf_map__value_size(m);
  }
  if (p == nullptr) ThrowState(env, "ERR_INVALID_STATE", std::string("map '") + bpf_map__name(m) + "' has no memory of its own (not a global data section, or not mmapable)");
  if (offset > total || size > total - offset) ThrowState(env, "ERR_OUT_OF_RANGE", "global variable outside its section");
  if (write && s.loaded && rodata)
    ThrowState(env, "ERR_INVALID_STATE", std::string("map '") + bpf_map__name(m) + "' is read-only once loaded");
  return p + offset;
}

// readGlobal(offset, size) -> Buffer (a copy)
Napi::Value Map::ReadGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t off = info[0].As<Napi::Number>().Uint32Value(), size = info[1].As<Napi::Number>().Uint32Value();
  return Napi::Buffer<uint8_t>::Copy(env, GlobalBytes(env, off, size, false), size);
}

// writeGlobal(offset, bytes)
Napi::Value Map::WriteGlobal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto b = BufferArg(info, 1, "bytes");
  memcpy(GlobalBytes(env, info[0].As<Napi::Number>().Uint32Value(), b.Length(), true), b.Data(), b.Length());
  return env.Undefined();
}

Napi::Value Map::Freeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  if (bpf_map_freeze(fd) != 0) ThrowErrno(env, errno, "bpf_map_freeze", SizesOf(env).name);
  return env.Undefined();
}

Napi::Value Map::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = Fd(env);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (bpf_obj_pin(fd, path.c_str()) != 0) ThrowErrno(env, errno, "bpf_obj_pin", path);
  return env.Undefined();
}

Napi::Value Map::Close(const Napi::CallbackInfo& info) {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  return info.Env().Undefined();
}

}  // namespace glue
