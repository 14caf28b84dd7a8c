// BPF_MAP_TYPE_USER_RINGBUF producer (Linux 6.1). The ring is written here
// as libbpf's user_ring_buffer writes it (the protocol of
// kernel/bpf/ringbuf.c): libbpf's functions came with libbpf 1.1, and the
// addon's floor is 1.0 (a lookup at run time would need glibc 2.34's
// dlsym). submit() copies a record into the ring in one call (reserve,
// copy, commit); reserve() hands JavaScript the reserved sample itself, as
// an ArrayBuffer over the ring's pages that commit() detaches, so no view
// outlives the sample. Nothing here blocks: a full ring is ENOSPC.
#include "glue.h"

#include <sys/mman.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <vector>

namespace glue {

namespace {

// The ring's framing (uapi bpf.h): an 8-byte header before each sample,
// whose length word carries the busy and discard bits.
constexpr uint32_t kBusyBit = 1u << 31;
constexpr uint32_t kDiscardBit = 1u << 30;
constexpr uint32_t kHeader = 8;

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

  // new NativeUserRingBuffer(mapFd, name): maps the ring as libbpf's
  // user_ring_buffer__new does. The kernel's consumer position is
  // read-only; the producer page and the data are ours, the data mapped
  // twice in a row so that a sample that wraps is still contiguous.
  explicit UserRingBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UserRingBuffer>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    name_ = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "map fd " + std::to_string(fd);
    bpf_map_info mi;
    if (InfoByFd(fd, mi) != 0) ThrowErrno(env, errno, "user_ring_buffer__new", name_);
    if (mi.type != BPF_MAP_TYPE_USER_RINGBUF) ThrowErrno(env, EINVAL, "user_ring_buffer__new", name_ + " is not a user ring buffer");
    size_ = mi.max_entries;  // a power of two, a multiple of the page size
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* c = mmap(nullptr, page_, PROT_READ, MAP_SHARED, fd, 0);
    if (c == MAP_FAILED) ThrowErrno(env, errno, "user_ring_buffer__new", name_ + " (mmap of the consumer page)");
    consumer_ = static_cast<const uint64_t*>(c);
    mapLen_ = page_ + 2 * static_cast<size_t>(size_);
    void* p = mmap(nullptr, mapLen_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(page_));
    if (p == MAP_FAILED) {
      int err = errno;
      munmap(const_cast<uint64_t*>(consumer_), page_);
      consumer_ = nullptr;
      ThrowErrno(env, err, "user_ring_buffer__new", name_ + " (mmap of the producer page and data)");
    }
    producer_ = static_cast<uint64_t*>(p);
    data_ = static_cast<uint8_t*>(p) + page_;
  }

  ~UserRingBuffer() override { Release(nullptr); }

 private:
  struct Reservation {
    uint8_t* sample;
    Napi::Reference<Napi::ArrayBuffer> buffer;
  };

  void Live(Napi::Env env) {
    if (data_ == nullptr) ThrowState(env, "ERR_INVALID_STATE", "UserRingBuffer is closed");
  }

  // A sample of `len` bytes, its header marked busy (the kernel stops
  // there until it is committed); nullptr and errno when it cannot be.
  uint8_t* ReserveSample(uint32_t len) {
    if (len & (kBusyBit | kDiscardBit)) return errno = E2BIG, nullptr;
    // Pairs with the kernel's release of the consumer position.
    uint64_t cons = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    uint64_t prod = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    uint64_t total = (static_cast<uint64_t>(len) + kHeader + 7) / 8 * 8;
    if (total > size_) return errno = E2BIG, nullptr;
    if (size_ - (prod - cons) < total) return errno = ENOSPC, nullptr;
    uint32_t* hdr = reinterpret_cast<uint32_t*>(data_ + (prod & (size_ - 1)));
    *hdr = len | kBusyBit;
    // The kernel reads the header once it sees the new producer position.
    __atomic_store_n(producer_, prod + total, __ATOMIC_RELEASE);
    return data_ + ((prod + kHeader) & (size_ - 1));
  }

  // Clears the busy bit (and marks a discarded sample): the kernel may take it.
  void CommitSample(uint8_t* sample, bool discard) {
    uint32_t* hdr = reinterpret_cast<uint32_t*>(data_ + ((sample - data_ - kHeader) & (size_ - 1)));
    uint32_t len = *hdr & ~kBusyBit;
    if (discard) len |= kDiscardBit;
    __atomic_exchange_n(hdr, len, __ATOMIC_ACQ_REL);
  }

  // Copies `len` bytes into a new sample; false when the ring is full.
  bool Put(Napi::Env env, const uint8_t* data, uint32_t len, bool throwWhenFull) {
    uint8_t* sample = ReserveSample(len);
    if (sample == nullptr) {
      int err = errno;
      if (err == ENOSPC && !throwWhenFull) return false;
      ThrowErrno(env, err, "user_ring_buffer__reserve", name_ + " (" + std::to_string(len) + " bytes)");
    }
    if (len) memcpy(sample, data, len);
    CommitSample(sample, false);
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
    Live(env);
    uint32_t size = info[0].As<Napi::Number>().Uint32Value();
    uint8_t* sample = ReserveSample(size);
    if (sample == nullptr) {
      int err = errno;
      ThrowErrno(env, err, "user_ring_buffer__reserve", name_ + " (" + std::to_string(size) + " bytes)");
    }
    // The pages are the ring's: no finalizer frees them, and commit() or
    // close() detaches the buffer before they can go.
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, sample, size);
    reservations_.push_back(Reservation{sample, Napi::Persistent(ab)});
    return ab;
  }

  // commit(arrayBuffer, discard): submits (or discards) the sample that
  // reserve() returned as this buffer; false if it is not one of ours (any
  // more).
  Napi::Value Commit(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    bool discard = info[1].ToBoolean();
    for (auto it = reservations_.begin(); it != reservations_.end(); ++it) {
      if (it->buffer.Value() != ab) continue;
      CommitSample(it->sample, discard);
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
    uint64_t c = __atomic_load_n(consumer_, __ATOMIC_ACQUIRE);
    uint64_t p = __atomic_load_n(producer_, __ATOMIC_ACQUIRE);
    return Napi::Number::New(env, static_cast<double>(p - c));
  }

  // Samples still reserved are discarded (the kernel skips them) and their
  // buffers detached, then the ring is unmapped.
  void Release(Napi::Env* env) {
    if (data_ == nullptr) return;
    for (Reservation& r : reservations_) {
      CommitSample(r.sample, true);
      if (env != nullptr && !r.buffer.IsEmpty()) {
        Napi::ArrayBuffer ab = r.buffer.Value();
        if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      }
    }
    reservations_.clear();
    munmap(producer_, mapLen_);
    munmap(const_cast<uint64_t*>(consumer_), page_);
    producer_ = nullptr;
    consumer_ = nullptr;
    data_ = nullptr;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Release(&env);
    return env.Undefined();
  }

  std::string name_;
  std::vector<Reservation> reservations_;
  const uint64_t* consumer_ = nullptr;
  uint64_t* producer_ = nullptr;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  size_t page_ = 0, mapLen_ = 0;
};

}  // namespace

Napi::Function UserRingBufferInit(Napi::Env env) { return UserRingBuffer::Init(env); }

}  // namespace glue
