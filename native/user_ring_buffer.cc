// BPF_MAP_TYPE_USER_RINGBUF producer (Linux 6.1): libbpf's user_ring_buffer.
// submit() copies a record into the ring in one call (reserve, copy,
// submit); reserve() hands JavaScript the reserved sample itself, as an
// ArrayBuffer over the ring's pages that commit() detaches, so no view
// outlives the sample. Nothing here blocks: a full ring is ENOSPC
// (user_ring_buffer__reserve_blocking is not used, it would stall the event
// loop).
#include "glue.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

// Declared by libbpf.h from 1.1 on.
struct user_ring_buffer;

namespace glue {

namespace {

// libbpf's user_ring_buffer functions came with libbpf 1.1 (LIBBPF_1.1.0
// symbols). The addon's floor is libbpf 1.0, so where it links the system
// libbpf they are looked up when first needed, in the libbpf it was loaded
// with, rather than bound at load time: an older libbpf then fails here,
// with a clear error, instead of failing to load the whole addon. A
// statically linked libbpf (LBN_STATIC_LIBBPF) is called directly.
struct UrbApi {
  // The opts argument is always null here: `const void*` keeps these types
  // free of libbpf 1.1's headers.
  user_ring_buffer* (*create)(int, const void*) = nullptr;
  void* (*reserve)(user_ring_buffer*, uint32_t) = nullptr;
  void (*submit)(user_ring_buffer*, void*) = nullptr;
  void (*discard)(user_ring_buffer*, void*) = nullptr;
  void (*release)(user_ring_buffer*) = nullptr;
};

template <typename T>
void Bind(T& slot, void* fn) { slot = reinterpret_cast<T>(fn); }

const UrbApi* Api() {
  static const UrbApi* api = []() -> const UrbApi* {
    static UrbApi a;
#ifdef LBN_STATIC_LIBBPF
#if LIBBPF_MAJOR_VERSION > 1 || (LIBBPF_MAJOR_VERSION == 1 && LIBBPF_MINOR_VERSION >= 1)
    Bind(a.create, reinterpret_cast<void*>(&user_ring_buffer__new));
    Bind(a.reserve, reinterpret_cast<void*>(&user_ring_buffer__reserve));
    Bind(a.submit, reinterpret_cast<void*>(&user_ring_buffer__submit));
    Bind(a.discard, reinterpret_cast<void*>(&user_ring_buffer__discard));
    Bind(a.release, reinterpret_cast<void*>(&user_ring_buffer__free));
#endif
#else
    Dl_info di;
    if (dladdr(reinterpret_cast<void*>(&bpf_object__open_file), &di) == 0 || di.dli_fname == nullptr) return nullptr;
    void* lib = dlopen(di.dli_fname, RTLD_LAZY | RTLD_NOLOAD);  // kept: libbpf stays loaded with the addon
    if (lib == nullptr) return nullptr;
    Bind(a.create, dlsym(lib, "user_ring_buffer__new"));
    Bind(a.reserve, dlsym(lib, "user_ring_buffer__reserve"));
    Bind(a.submit, dlsym(lib, "user_ring_buffer__submit"));
    Bind(a.discard, dlsym(lib, "user_ring_buffer__discard"));
    Bind(a.release, dlsym(lib, "user_ring_buffer__free"));
#endif
    return a.create && a.reserve && a.submit && a.discard && a.release ? &a : nullptr;
  }();
  return api;
}

class UserRingBuffer : public Napi::ObjectWrap<UserRingBuffer> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeUserRingBuffer",
                       {
                           InstanceMethod<&UserRingBuffer::Submit>("submit"),
                           InstanceMethod<&UserRingBuffer::SubmitBatch>("submitBatch"),
                           InstanceMethod<&UserRingBuffer::Reserve>("reserve"),
                           InstanceMethod<&UserRingBuffer::Commit>("commit"),
                           InstanceMethod<&UserRingBuffer::Pending>("pending"),
                           InstanceMethod<&UserRingBuffer::Close>("close"),
                       });
  }

  // new NativeUserRingBuffer(mapFd, name)
  explicit UserRingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UserRingBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    name_ = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "map fd " + std::to_string(fd);
    api_ = Api();
    if (api_ == nullptr)
      ThrowErrno(env, EOPNOTSUPP, "user_ring_buffer__new", name_,
                 std::string("the libbpf this addon runs with (") + std::to_string(libbpf_major_version()) + "." +
                     std::to_string(libbpf_minor_version()) + ") has no user ring buffers: they need libbpf 1.1 or newer\n");
    LogCapture cap;
    rb_ = api_->create(fd, nullptr);
    if (rb_ == nullptr) ThrowErrno(env, errno, "user_ring_buffer__new", name_, cap.take());
    // Read-only views of the positions, for pending(): the consumer page is
    // the kernel's, the producer page libbpf's.
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* c = mmap(nullptr, page_, PROT_READ, MAP_SHARED, fd, 0);
    void* p = mmap(nullptr, page_, PROT_READ, MAP_SHARED, fd, page_);
    consumer_ = c == MAP_FAILED ? nullptr : static_cast<const uint64_t*>(c);
    producer_ = p == MAP_FAILED ? nullptr : static_cast<const uint64_t*>(p);
  }

  ~UserRingBuffer() override { Release(nullptr); }

 private:
  struct Reservation {
    void* sample;
    Napi::Reference<Napi::ArrayBuffer> buffer;
  };

  user_ring_buffer* Live(Napi::Env env) {
    if (rb_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "UserRingBuffer is closed");
    return rb_;
  }

  // Copies `len` bytes into a new sample; false when the ring is full.
  bool Put(Napi::Env env, const uint8_t* data, uint32_t len, bool throwWhenFull) {
    void* sample = api_->reserve(rb_, len);
    if (sample == nullptr) {
      int err = errno;
      if (err == ENOSPC && !throwWhenFull) return false;
      ThrowErrno(env, err, "user_ring_buffer__reserve", name_ + " (" + std::to_string(len) + " bytes)");
    }
    if (len) memcpy(sample, data, len);
    api_->submit(rb_, sample);
    return true;
  }

  // submit(buffer)
  Napi::Value Submit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    auto buf = BufferArg(info, 0, "record");
    Put(env, buf.Data(), static_cast<uint32_t>(buf.Length()), true);
    return env.Undefined();
  }

  // submitBatch(buffer, lengths: Uint32Array): the records laid end to end;
  // returns how many went in before the ring was full.
  Napi::Value SubmitBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    auto buf = BufferArg(info, 0, "records");
    Napi::Uint32Array lengths = info[1].As<Napi::Uint32Array>();
    size_t off = 0, n = 0;
    for (; n < lengths.ElementLength(); n++) {
      uint32_t len = lengths[n];
      if (off + len > buf.Length()) ThrowState(env, "ERR_OUT_OF_RANGE", "record lengths exceed the buffer");
      if (!Put(env, buf.Data() + off, len, false)) break;
      off += len;
    }
    return Napi::Number::New(env, static_cast<double>(n));
  }

  // reserve(size): an ArrayBuffer over the reserved sample; a full ring is
  // ENOSPC, as for submit().
  Napi::Value Reserve(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    user_ring_buffer* rb = Live(env);
    uint32_t size = info[0].As<Napi::Number>().Uint32Value();
    void* sample = api_->reserve(rb, size);
    if (sample == nullptr) {
      int err = errno;
      ThrowErrno(env, err, "user_ring_buffer__reserve", name_ + " (" + std::to_string(size) + " bytes)");
    }
    // The pages belong to libbpf's mapping: no finalizer frees them, and
    // commit() or close() detaches the buffer before they can go.
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, sample, size);
    reservations_.push_back(Reservation{sample, Napi::Persistent(ab)});
    return ab;
  }

  // commit(arrayBuffer, discard): submits (or discards) the sample that
  // reserve() returned as this buffer; false if it is not one of ours (any
  // more).
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    user_ring_buffer* rb = Live(env);
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    bool discard = info[1].ToBoolean();
    for (auto it = reservations_.begin(); it != reservations_.end(); ++it) {
      if (it->buffer.Value() != ab) continue;
      if (discard) api_->discard(rb, it->sample);
      else api_->submit(rb, it->sample);
      if (!ab.IsDetached()) ab.Detach();
      reservations_.erase(it);
      return Napi::Boolean::New(env, true);
    }
    return Napi::Boolean::New(env, false);
  }

  // Bytes submitted (or reserved) and not yet drained by the kernel.
  Napi::Value Pending(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    if (!consumer_ || !producer_) return Napi::Number::New(env, -1);
    uint64_t c = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    uint64_t p = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    return Napi::Number::New(env, static_cast<double>(p - c));
  }

  // Samples still reserved are discarded (the kernel skips them) and their
  // buffers detached, then the ring is unmapped.
  void Release(Napi::Env* env) {
    if (rb_ == nullptr) return;
    for (Reservation& r : reservations_) {
      api_->discard(rb_, r.sample);
      if (env != nullptr && !r.buffer.IsEmpty()) {
        Napi::ArrayBuffer ab = r.buffer.Value();
        if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      }
    }
    reservations_.clear();
    api_->release(rb_);
    rb_ = nullptr;
    if (consumer_) munmap(const_cast<uint64_t*>(consumer_), page_);
    if (producer_) munmap(const_cast<uint64_t*>(producer_), page_);
    consumer_ = producer_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Release(&env);
    return env.Undefined();
  }

  const UrbApi* api_ = nullptr;
  user_ring_buffer* rb_ = nullptr;
  std::string name_;
  std::vector<Reservation> reservations_;
  const uint64_t* consumer_ = nullptr;
  const uint64_t* producer_ = nullptr;
  size_t page_ = 0;
};

}  // namespace

Napi::Function UserRingBufferInit(Napi::Env env) { return UserRingBuffer::Init(env); }

}  // namespace glue
