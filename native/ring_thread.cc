// RingBuffer with { drain: 'thread' }: a native thread keeps taking records
// out of the rings while JavaScript is busy, into a bounded queue in user
// space, so a briefly blocked event loop does not make the kernel drop
// records (a ring the loop alone drains holds only what fits between two
// turns). The thread walks the ring exactly as ts/internal/ring_reader.ts
// does (and libbpf's ringbuf_process_ring()): acquire loads of the producer
// position and of each header, a release store of the consumer position.
// JavaScript is told with a uv_async_t and gets the queue in batches in the
// poller's frame format (poller.h), one batch (at most batchSize records /
// batchBytes) per event-loop turn, as the loop drain does: a long queue
// cannot hold the loop. When the queue is full the thread
// waits for JavaScript to take it, and the kernel's ring fills as it would
// without the thread: the bound holds, nothing grows without limit.
// libuv's thread, mutex and condition variable rather than std::thread and
// friends: std::condition_variable::wait needs a newer libstdc++
// (GLIBCXX_3.4.30) than the one the README declares.
#include "glue.h"
#include "poller.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace glue {

namespace {

constexpr uint32_t kBusy = 1u << 31;
constexpr uint32_t kDiscard = 1u << 30;

// A record's data length, from its header.
constexpr uint32_t DataLen(uint32_t h) { return h & ~(kBusy | kDiscard); }
// The bytes a record takes in the ring: its 8-byte header and its data,
// padded to 8 (exactly what its frame takes in a batch: poller.h).
constexpr uint64_t RingBytes(uint32_t h) { return (static_cast<uint64_t>(DataLen(h)) + 15) & ~static_cast<uint64_t>(7); }

struct Ring {
  uint64_t* consumer;
  const uint8_t* base;  // producer page, then the data twice
  size_t page, size;
};

// Batches' memory, reused. A block comes back here when the Buffer that
// JavaScript got over it is collected, and the thread fills it again for a
// later batch: fresh memory cost the thread a page fault per 4 KiB, a third
// of its time under a flat-out producer (perf). Shared with every Buffer
// still out, which may outlive the RingThread; at most kMaxBlocks blocks
// and kMaxBytes bytes wait here, the rest is freed.
class BlockPool {
 public:
  static constexpr size_t kMaxBlocks = 16, kMaxBytes = 16 << 20;
  BlockPool() { uv_mutex_init(&mu_); }
  ~BlockPool() {
    for (auto& b : free_) free(b.first);
    uv_mutex_destroy(&mu_);
  }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // The smallest block of at least n bytes, or {nullptr, 0}.
  std::pair<uint8_t*, size_t> Take(size_t n) {
    std::pair<uint8_t*, size_t> got{nullptr, 0};
    uv_mutex_lock(&mu_);
    size_t best = free_.size();
    for (size_t i = 0; i < free_.size(); i++) {
      if (free_[i].second >= n && (best == free_.size() || free_[i].second < free_[best].second)) best = i;
    }
    if (best < free_.size()) {
      got = free_[best];
      free_[best] = free_.back();
      free_.pop_back();
      bytes_ -= got.second;
      hits_++;
    }
    uv_mutex_unlock(&mu_);
    return got;
  }

  // Blocks handed out again (for tests).
  uint64_t Hits() {
    uv_mutex_lock(&mu_);
    uint64_t h = hits_;
    uv_mutex_unlock(&mu_);
    return h;
  }

  void Give(uint8_t* p, size_t cap) {
    uv_mutex_lock(&mu_);
    bool keep = free_.size() < kMaxBlocks && bytes_ + cap <= kMaxBytes;
    if (keep) {
      free_.emplace_back(p, cap);
      bytes_ += cap;
    }
    uv_mutex_unlock(&mu_);
    if (!keep) free(p);
  }

 private:
  uv_mutex_t mu_;
  std::vector<std::pair<uint8_t*, size_t>> free_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
};

// What a batch's Buffer gives back when collected.
struct Returned {
  std::shared_ptr<BlockPool> pool;
  size_t cap;
};

class RingThread : public Napi::ObjectWrap<RingThread> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeRingThread",
                       {
                           InstanceMethod<&RingThread::Add>("add"),
                           InstanceMethod<&RingThread::Start>("start"),
                           InstanceMethod<&RingThread::Pause>("pause"),
                           InstanceMethod<&RingThread::Resume>("resume"),
                           InstanceMethod<&RingThread::Ref>("ref"),
                           InstanceMethod<&RingThread::Unref>("unref"),
                           InstanceMethod<&RingThread::Consume>("consume"),
                           InstanceMethod<&RingThread::Close>("close"),
                           InstanceMethod<&RingThread::Available>("available"),
                           InstanceMethod<&RingThread::Reused>("reused"),
                       });
  }

  // new NativeRingThread(onBatch(buf, count, errno), queueBytes, batchSize, batchBytes)
  explicit RingThread(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingThread>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    onBatch_ = Napi::Weak(info[0].As<Napi::Function>());
    owner_ = Napi::Weak(info.This().As<Napi::Object>());
    cap_ = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    batchRecords_ = info[2].As<Napi::Number>().Uint32Value();
    batchBytes_ = info[3].As<Napi::Number>().Uint32Value();
    context_ = std::make_unique<Napi::AsyncContext>(env, "RingBuffer");
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) ThrowErrno(env, errno, "epoll_create1");
    stopfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stopfd_ < 0) {
      int err = errno;
      Release();
      ThrowErrno(env, err, "eventfd");
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = UINT64_MAX;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, stopfd_, &ev);
    uv_mutex_init(&mu_);
    uv_cond_init(&room_);
    locks_ = true;
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    async_ = new uv_async_t;
    uv_async_init(loop, async_, OnAsync);
    async_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
  }

  ~RingThread() override {
    Release();
    if (locks_) {
      uv_cond_destroy(&room_);
      uv_mutex_destroy(&mu_);
    }
  }

 private:
  void Live(Napi::Env env) {
    if (epfd_ < 0) ThrowState(env, "ERR_INVALID_STATE", "RingBuffer is closed");
  }

  // add(mapFd, size): maps the ring for the thread (never seen by JavaScript).
  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Live(env);
    if (started_) ThrowState(env, "ERR_INVALID_STATE", "rings are added before start()");
    int fd = info[0].As<Napi::Number>().Int32Value();
    size_t size = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* c = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (c == MAP_FAILED) ThrowErrno(env, errno, "mmap", "consumer page of ring fd " + std::to_string(fd));
    void* d = mmap(nullptr, page + 2 * size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(page));
    if (d == MAP_FAILED) {
      int err = errno;
      munmap(c, page);
      ThrowErrno(env, err, "mmap", "producer and data pages of ring fd " + std::to_string(fd));
    }
    rings_.push_back(Ring{static_cast<uint64_t*>(c), static_cast<const uint8_t*>(d), page, size});
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = rings_.size() - 1;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0) ThrowErrno(env, errno, "epoll_ctl", "ring fd " + std::to_string(fd));
    return env.Undefined();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Live(info.Env());
    if (!started_) {
      int err = uv_thread_create(&thread_, [](void* self) { static_cast<RingThread*>(self)->Run(); }, this);
      if (err != 0) ThrowErrno(info.Env(), -err, "uv_thread_create");
      started_ = true;
    }
    return info.Env().Undefined();
  }

  // The thread: wait for the rings, move their records into the queue.
  // The lock is held only to append a finished chunk or to wait for room,
  // never while records are copied: a copy pass over a full 8 MiB ring
  // takes milliseconds, and the thread takes the lock again right after
  // each epoll_wait, so Deliver() on the event loop, woken by the unlock
  // but slower to run than the thread to re-lock (glibc mutexes are not
  // fair), waited behind pass after pass: the loop stalled for up to 300
  // ms under a flat-out producer (bench, `--thread` row).
  void Run() {
    epoll_event events[16];
    while (!stop_.load(std::memory_order_acquire)) {
      int n = epoll_wait(epfd_, events, 16, -1);
      if (n < 0 && errno != EINTR) break;
      for (uint16_t i = 0; i < rings_.size() && !stop_.load(std::memory_order_acquire); i++) TakeFrom(i);
    }
  }

  // Bytes the queue can take now, once `need` bytes fit: waits for
  // JavaScript to take batches until they do, or until the queue is empty
  // (which takes `need` whatever the bound: one record larger than it).
  // 0 once stopped.
  size_t Room(size_t need) {
    uv_mutex_lock(&mu_);
    while (!stop_.load(std::memory_order_relaxed) && queued_ > 0 && queued_ + need > cap_) uv_cond_wait(&room_, &mu_);
    size_t room = stop_.load(std::memory_order_relaxed) ? 0 : queued_ == 0 ? std::max(cap_, need) : cap_ - queued_;
    uv_mutex_unlock(&mu_);
    return room;
  }

  // Out of memory: wait a little (JavaScript's collections free batches)
  // rather than go straight back to a ring that stays readable.
  void BackOff() {
    uv_mutex_lock(&mu_);
    if (!stop_.load(std::memory_order_relaxed)) uv_cond_timedwait(&room_, &mu_, 10 * 1000 * 1000);
    uv_mutex_unlock(&mu_);
  }

  // One ring's committed records into the queue, a chunk (one batch for
  // JavaScript) at a time, copied without the lock. A chunk starts once
  // the queue has room for a whole batch (as many records as the first
  // one's size allows, or what the ring holds): under a queue that is
  // nearly full, batches of a record or two would each cost JavaScript a
  // turn. While the queue is full the thread waits, and the kernel's ring
  // fills meanwhile. A record still reserved (busy) ends the pass: the
  // ring stays readable, so the thread is back at once, as libbpf's
  // consumer is (a BPF program holds a record for microseconds).
  void TakeFrom(uint16_t index) {
    Ring& r = rings_[index];
    const uint64_t* prod = reinterpret_cast<const uint64_t*>(r.base);
    uint64_t pos = __atomic_load_n(r.consumer, __ATOMIC_RELAXED);  // ours alone
    uint64_t end = __atomic_load_n(prod, __ATOMIC_ACQUIRE);
    // Where the record at position p starts (the data pages are mapped
    // twice, so it never wraps), and its header, read with acquire: it
    // pairs with the kernel's commit, so the data is complete once BUSY
    // reads clear.
    auto at = [&](uint64_t p) { return r.base + r.page + (p & (r.size - 1)); };
    auto header = [&](uint64_t p) { return __atomic_load_n(reinterpret_cast<const uint32_t*>(at(p)), __ATOMIC_ACQUIRE); };
    // A whole batch from `p` on, if every record took `adv` bytes.
    auto wholeBatch = [&](uint64_t p, uint64_t adv) { return std::min<uint64_t>({end - p, batchRecords_ * adv, batchBytes_ + adv}); };
    while (pos < end) {
      uint32_t h0 = header(pos);
      if (h0 & kBusy) return;
      uint64_t adv0 = RingBytes(h0);
      size_t room = Room(static_cast<size_t>(std::max<uint64_t>(adv0, std::min<uint64_t>(wholeBatch(pos, adv0), cap_))));
      if (room == 0) return;  // stopped
      Block block;
      size_t q = 0, records = 0;
      bool oom = false;
      const uint64_t from = pos;
      while (pos < end && records < batchRecords_ && q < batchBytes_) {
        uint32_t h = header(pos);
        if (h & kBusy) {
          end = pos;
          break;
        }
        uint32_t len = DataLen(h);
        uint64_t adv = RingBytes(h);
        if (!(h & kDiscard)) {
          if (q + adv > room) break;  // the next chunk waits for room for it
          if (q + adv > block.cap) {
            // Frames take exactly the ring's bytes (an 8-byte header, data
            // padded to 8), so what the ring holds bounds the batch; sized
            // at first as if every record were as long as this one (exact
            // for the common fixed-size event), doubled if one is longer.
            size_t want = static_cast<size_t>(std::min<uint64_t>(room, block.cap == 0
                ? wholeBatch(pos, adv)
                : std::max<uint64_t>(q + adv, 2 * block.cap)));
            if (block.cap == 0) block.Adopt(pool_->Take(want));
            if (q + adv > block.cap && !block.Grow(std::max<size_t>(want, q + adv))) {
              oom = true;  // out of memory: the batch ends with what fitted
              break;
            }
          }
          FrameHeader f{len, index, 0};
          memcpy(block.data + q, &f, sizeof(f));
          memcpy(block.data + q + sizeof(f), at(pos) + 8, len);
          q += adv;
          records++;
        }
        pos += adv;
      }
      if (records > 0) {
        if (q < block.cap / 2) block.Grow(q);  // far too big a guess: give back the rest (in place)
        bool queued = false;
        uv_mutex_lock(&mu_);
        try {
          chunks_.push_back(Chunk{std::move(block), q, records});
          queued_ += q;
          queued = true;
        } catch (const std::bad_alloc&) {
          // the records stay in the ring
        }
        uv_mutex_unlock(&mu_);
        if (!queued) {
          BackOff();
          return;
        }
        uv_async_send(async_);
      }
      // Release the space, discarded records included: after every read
      // above (the queued copy is complete).
      if (pos != from) __atomic_store_n(r.consumer, pos, __ATOMIC_RELEASE);
      if (oom) {
        BackOff();
        return;
      }
    }
  }

  // From libuv, with no JavaScript caller: Deliver() makes every Node-API
  // call through the C API and checks it, so that nothing throws here (a
  // C++ exception out of a libuv callback ends the process: a Worker
  // terminated while batches waited did exactly that).
  static void OnAsync(uv_async_t* handle) {
    auto* self = static_cast<RingThread*>(handle->data);
    if (self->paused_) return;
    napi_handle_scope scope;
    if (napi_open_handle_scope(self->env_, &scope) != napi_ok) return;
    self->Deliver(true);
    napi_close_handle_scope(self->env_, scope);
  }

  // Hands the oldest batch to JavaScript; another turn for the rest.
  // Returns the records. A failed Node-API call drops the batch; from the
  // loop (no JavaScript caller) an exception it left is reported as
  // uncaught, from consume() it is thrown to the caller.
  int64_t Deliver(bool fromLoop) {
    Block batch;
    size_t size = 0, n = 0;
    bool rest = false;
    uv_mutex_lock(&mu_);
    if (!chunks_.empty()) {
      Chunk& c = chunks_.front();
      batch = std::move(c.block);
      size = c.size;
      n = c.records;
      chunks_.pop_front();
      queued_ -= size;
      rest = !chunks_.empty();
    }
    uv_mutex_unlock(&mu_);
    uv_cond_signal(&room_);
    if (rest && async_ != nullptr) uv_async_send(async_);
    if (n == 0) return 0;
    napi_env env = env_;
    auto failed = [&]() -> int64_t {
      if (fromLoop) ReportPendingException(env);
      return 0;
    };
    napi_value fn = nullptr, recv = nullptr, argv[3] = {nullptr, nullptr, nullptr}, result;
    // The stream's callback, or nothing: collected, nobody wants batches.
    if (napi_get_reference_value(env, onBatch_, &fn) != napi_ok || fn == nullptr) return 0;
    if (napi_get_reference_value(env, owner_, &recv) != napi_ok || recv == nullptr) {
      if (napi_create_object(env, &recv) != napi_ok) return failed();
    }
    // The block becomes the Buffer's memory (no copy) and goes back to the
    // pool when the Buffer is collected.
    auto* back = new (std::nothrow) Returned{pool_, batch.cap};
    if (back == nullptr) return 0;  // out of memory: the batch is dropped
    napi_status made = napi_create_external_buffer(env, size, batch.data, [](napi_env, void* p, void* hint) {
      auto* r = static_cast<Returned*>(hint);
      r->pool->Give(static_cast<uint8_t*>(p), r->cap);
      delete r;
    }, back, &argv[0]);
    // Who owns the block now: a Buffer that was made; Node, which calls the
    // finalizer, once it got as far as making one (napi_generic_failure
    // after node::Buffer::New); else still this batch (refused up front:
    // JavaScript can no longer run, a pending exception, no external
    // buffers in this runtime), which frees it.
    if (argv[0] != nullptr || made == napi_generic_failure) {
      batch.Release();
    } else {
      delete back;
    }
    if (made != napi_ok) return failed();
    if (napi_create_double(env, static_cast<double>(n), &argv[1]) != napi_ok || napi_create_int32(env, 0, &argv[2]) != napi_ok) return failed();
    if (napi_make_callback(env, *context_, recv, fn, 3, argv, &result) != napi_ok) return failed();
    return static_cast<int64_t>(n);
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    paused_ = true;
    return info.Env().Undefined();
  }
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    paused_ = false;
    if (async_ != nullptr) uv_async_send(async_);  // what queued while paused
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (async_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(async_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (async_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    return info.Env().Undefined();
  }
  // Delivers what the thread has queued now.
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    Live(info.Env());
    return Napi::Number::New(info.Env(), static_cast<double>(Deliver(false)));
  }
  // Bytes written by the producers and not yet taken by the thread, per ring.
  Napi::Value Available(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Array a = Napi::Array::New(env, rings_.size());
    for (size_t i = 0; i < rings_.size(); i++) {
      const Ring& r = rings_[i];
      uint64_t p = __atomic_load_n(reinterpret_cast<const uint64_t*>(r.base), __ATOMIC_ACQUIRE);
      a.Set(i, static_cast<double>(p - __atomic_load_n(r.consumer, __ATOMIC_ACQUIRE)));
    }
    return a;
  }

  // Batches filled in a block that an earlier batch's Buffer gave back.
  Napi::Value Reused(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(pool_->Hits()));
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  void Release() {
    if (started_) {
      uv_mutex_lock(&mu_);
      stop_.store(true, std::memory_order_release);
      uv_mutex_unlock(&mu_);
      uint64_t one = 1;
      if (write(stopfd_, &one, sizeof(one)) < 0) {
        // eventfd writes fail only on overflow: the thread is woken anyway
      }
      uv_cond_signal(&room_);
      uv_thread_join(&thread_);
      started_ = false;
    }
    if (async_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
    // The thread is gone: nothing else reads these mappings.
    for (Ring& r : rings_) {
      munmap(r.consumer, r.page);
      munmap(const_cast<uint8_t*>(r.base), r.page + 2 * r.size);
    }
    rings_.clear();
    if (epfd_ >= 0) close(epfd_);
    if (stopfd_ >= 0) close(stopfd_);
    epfd_ = stopfd_ = -1;
    chunks_.clear();
    queued_ = 0;
  }

  Napi::Env env_;
  Napi::FunctionReference onBatch_;
  Napi::ObjectReference owner_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uv_async_t* async_ = nullptr;
  int epfd_ = -1, stopfd_ = -1;
  std::vector<Ring> rings_;
  uv_thread_t thread_;
  bool started_ = false;
  uv_mutex_t mu_;
  uv_cond_t room_;
  bool locks_ = false;
  // A batch's frames in malloc()'d memory: not zeroed first (a vector
  // zero-fills what it grows by, which with its regrowth copies took more
  // of the thread's time than copying the records did).
  struct Block {
    uint8_t* data = nullptr;
    size_t cap = 0;
    Block() = default;
    Block(Block&& o) noexcept : data(o.data), cap(o.cap) { o.data = nullptr; o.cap = 0; }
    Block& operator=(Block&& o) noexcept {
      std::swap(data, o.data);
      std::swap(cap, o.cap);
      return *this;
    }
    Block(const Block&) = delete;
    ~Block() { free(data); }
    bool Grow(size_t n) {
      void* p = realloc(data, n);
      if (p == nullptr) return false;
      data = static_cast<uint8_t*>(p);
      cap = n;
      return true;
    }
    void Adopt(std::pair<uint8_t*, size_t> b) {
      free(data);
      data = b.first;
      cap = b.second;
    }
    uint8_t* Release() {
      uint8_t* p = data;
      data = nullptr;
      cap = 0;
      return p;
    }
  };
  struct Chunk {
    Block block;  // frames (poller.h)
    size_t size = 0;
    size_t records = 0;
  };
  std::shared_ptr<BlockPool> pool_ = std::make_shared<BlockPool>();
  std::deque<Chunk> chunks_;  // guarded by mu_
  size_t queued_ = 0;         // bytes in chunks_, guarded by mu_
  size_t cap_ = 0;
  uint32_t batchRecords_ = 0, batchBytes_ = 0;
  // Set under mu_ (so a wait for room sees it), read anywhere.
  std::atomic<bool> stop_{false};
  bool paused_ = false;
};

}  // namespace

Napi::Function RingThreadInit(Napi::Env env) { return RingThread::Init(env); }

}  // namespace glue
