// Shared declarations of the addon's wrappers. Each wrapped concept has its
// own .cc file; this header only carries what they need of each other.
#pragma once

#include <napi.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

namespace glue {

// Bytes as lower-case hex (a program's tag, as bpftool prints it).
inline std::string Hex(const unsigned char* p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

// Holds SIGPROF back from this thread while it loads or test-runs
// programs. The verifier gives up with EAGAIN whenever a signal is pending
// for the loading thread (do_check() in kernel/bpf/verifier.c checks
// signal_pending()), and libbpf retries a load only 5 times; a repeated
// BPF_PROG_TEST_RUN stops with EINTR the same way. V8's CPU profiler (node
// --cpu-prof, the inspector's Profiler) sends SIGPROF to the JavaScript
// thread every sampling interval (1 ms by default), so in a profiled
// process any program the verifier takes longer than that over never
// loaded, and no test run longer than that finished. The kernel keeps the
// signal pending meanwhile: the profiler's sample comes late, not never.
class HoldProfilerSignal {
 public:
  HoldProfilerSignal() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &s, &old_);
  }
  ~HoldProfilerSignal() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  HoldProfilerSignal(const HoldProfilerSignal&) = delete;
  HoldProfilerSignal& operator=(const HoldProfilerSignal&) = delete;

 private:
  sigset_t old_;
};

// ---------------------------------------------------------------- errors.cc
// What a failed call leaves behind: enough for ts/errors.ts to build a
// BpfError or VerifierError. Plain data so that worker threads can fill it.
struct Failure {
  int err = 0;             // positive errno
  std::string op;          // the libbpf (or libc) function that failed
  std::string target;      // what it was applied to (path, name, ...)
  std::string log;         // what libbpf printed during the call
  std::string program;     // program whose verifier log is attached
  std::string verifierLog; // raw verifier output
  bool verifier = false;
};

// Captures libbpf's print callback output on this thread for its lifetime.
// What it captured also goes to JS (print.cc) when it ends: a failure's
// (take()n) or a quiet capture's as such, so that only the warnings of
// calls that succeeded become process warnings.
class LogCapture {
 public:
  enum Quiet { kQuiet };
  LogCapture();
  explicit LogCapture(Quiet);
  ~LogCapture();
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  std::string take();
  void Add(int level, const std::string& text);  // errors.cc's print callback

 private:
  std::string text_;
  LogCapture* prev_;
  std::vector<std::pair<int, std::string>> forward_;
  bool taken_ = false;
};

// ----------------------------------------------------------------- print.cc
// Whether JS wants libbpf's messages of this level (0 warn, 1 info, 2 debug).
bool PrintWanted(int level);
// Queues messages for JS; `failed`: they belong to a call that failed (its
// error carries them) or to a quiet probe. Any thread.
void PrintForward(std::vector<std::pair<int, std::string>>&& messages, bool failed);
void InitPrint(Napi::Env env, Napi::Object exports);
// ------------------------------------------------------------ trace_pipe.cc
void InitTracePipe(Napi::Env env, Napi::Object exports);

void InstallPrintCallback();
Napi::Error MakeError(Napi::Env env, const Failure& f);
[[noreturn]] void Throw(Napi::Env env, const Failure& f);
// Shorthand: a Failure from errno-style `err` (positive or negative).
[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* op,
                             const std::string& target = std::string(),
                             const std::string& log = std::string());
// Misuse detected in native code (closed handle, wrong buffer size). The
// TypeScript layer checks first; this only keeps a bad call from crashing.
[[noreturn]] void ThrowState(Napi::Env env, const char* code, const std::string& msg);

// After a failed Node-API call from a libuv callback (no JavaScript caller
// to throw to): an exception left pending is reported as Node reports one
// from any other event; none (the environment is going away) is dropped.
void ReportPendingException(napi_env env);

// Buffers passed from JavaScript.
Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* what);

// --------------------------------------------------------- per-addon data
class Map;
// The maps whose per-op scratch is in use, by slot (see ScratchOps in
// map.cc). Shared by the addon data and every such map, so that neither's
// teardown can leave the other with a dangling table.
struct ScratchTable {
  std::vector<Map*> maps;  // nullptr: a free slot
  std::vector<uint32_t> freeSlots;
  uint32_t* slot = nullptr;  // the word JavaScript writes a slot into before an op
};
struct AddonData {
  Napi::FunctionReference makeError;
  Napi::FunctionReference mapCtor;
  Napi::FunctionReference programCtor;
  Napi::FunctionReference linkCtor;
  std::shared_ptr<ScratchTable> scratch = std::make_shared<ScratchTable>();
  Napi::Reference<Napi::ArrayBuffer> scratchSlot;  // holds ScratchTable::slot's memory
};
AddonData& Data(Napi::Env env);

// ---------------------------------------------------------------- object.cc
struct OpenOptions {
  std::string name, btfCustomPath, pinRoot, kconfig;
  bool hasName = false, hasBtf = false, hasPinRoot = false, hasKconfig = false;
  uint32_t kernelLogLevel = 0;
};

// The state a bpf_object shares with the wrappers of its maps and programs.
// Children keep it alive through shared_ptr and resolve their libbpf
// pointers through it, so a closed (or re-opened) object is seen at once.
struct ObjectState {
  bpf_object* obj = nullptr;
  std::vector<bpf_map*> maps;
  std::vector<bpf_program*> progs;
  std::vector<std::string> progLogs;  // kept after a load with kernelLogLevel > 0
  // Data sections mapped after load (index: map), shared with the programs.
  std::vector<std::pair<void*, size_t>> globals;
  // Pre-load settings libbpf cannot give back (or drops on a failed load),
  // kept to re-apply them to a re-opened object (index: map or program).
  // The fds are our own dups, closed with the object: libbpf keeps
  // inner_map_fd without owning it, and closes a reused fd when a load fails.
  std::vector<int> reuseFds, innerFds;
  std::vector<std::string> attachTargets;
  std::vector<int> progIfindexes;
  std::string path;            // source: file path ...
  std::vector<uint8_t> image;  // ... or an in-memory ELF image (kept: libbpf reads it until load)
  OpenOptions opts;
  bool loaded = false;
  bool failed = false;
  bool busy = false;           // an async load runs on a worker thread
  bool closeAfterLoad = false;

  ~ObjectState();
  void Close();
  void Index();
};
using ObjectRef = std::shared_ptr<ObjectState>;

class Object : public Napi::ObjectWrap<Object> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Object(const Napi::CallbackInfo& info);

 private:
  Napi::Value Name(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value LoadAsync(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Btf(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  ObjectState& Live(Napi::Env env);

  ObjectRef state_;
};

// Loads `state` (with the verifier-log retries); fills `f` on failure.
bool LoadObject(ObjectState& state, Failure& f);

// ------------------------------------------------------------------- map.cc
class Map : public Napi::ObjectWrap<Map> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object FromObject(Napi::Env env, const ObjectRef& owner, size_t index);
  explicit Map(const Napi::CallbackInfo& info);
  ~Map() override;

 private:
  static Napi::Value Create(const Napi::CallbackInfo& info);
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  static Napi::Value FromFd(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  static Napi::Object FromOwnedFd(Napi::Env env, int fd);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value SetMaxEntries(const Napi::CallbackInfo& info);
  Napi::Value Set(const Napi::CallbackInfo& info);
  Napi::Value SetInnerMapFd(const Napi::CallbackInfo& info);
  Napi::Value ReuseFd(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value LookupAndDelete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value EachElem(const Napi::CallbackInfo& info);
  Napi::Value Scratch(const Napi::CallbackInfo& info);
  static Napi::Value ScratchOps(const Napi::CallbackInfo& info);
  enum class ScratchOp { kLookup, kUpdate, kDelete, kLookupAndDelete, kNextKey };
  template <ScratchOp Op>
  static napi_value RunScratch(napi_env env, napi_callback_info info);
  template <ScratchOp Op>
  int ScratchCall(Napi::Env env);
  Napi::Value Memory(const Napi::CallbackInfo& info);
  Napi::Value DetachMemory(const Napi::CallbackInfo& info);
  Napi::Value ReadGlobal(const Napi::CallbackInfo& info);
  Napi::Value WriteGlobal(const Napi::CallbackInfo& info);
  uint8_t* GlobalBytes(Napi::Env env, size_t offset, size_t size, bool write);
  Napi::Value Freeze(const Napi::CallbackInfo& info);
  Napi::Value Btf(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value AttachStructOps(const Napi::CallbackInfo& info);  // struct_ops.cc

  bpf_map* Owned(Napi::Env env, bool mustBeLoaded);
  int Fd(Napi::Env env);

  ObjectRef owner_;  // set for a map of an object
  size_t index_ = 0;
  int fd_ = -1;      // set for a standalone map (created, from a pin)
  uint32_t keySize_ = 0, valueBytes_ = 0;
  std::string name_;
  // The per-op fast path's key and value bytes (see Scratch in map.cc).
  Napi::Reference<Napi::ArrayBuffer> scratchRef_;
  uint8_t* scratchKey_ = nullptr;
  uint8_t* scratchValue_ = nullptr;
  uint8_t* scratchNext_ = nullptr;
  uint32_t* scratchCtl_ = nullptr;  // [0]: the op's argument in; [1]: its result out
  bool scratchHasKey_ = false;
  std::shared_ptr<ScratchTable> scratchTable_;  // set with the scratch
  uint32_t scratchSlot_ = 0;

 public:
  struct Sizes {
    uint32_t key, value;
    const char* name;  // valid while the map is
  };

 private:
  Sizes SizesOf(Napi::Env env);
};

// --------------------------------------------------------------- program.cc
class Program : public Napi::ObjectWrap<Program> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object FromObject(Napi::Env env, const ObjectRef& owner, size_t index);
  explicit Program(const Napi::CallbackInfo& info);
  ~Program() override;

 private:
  static Napi::Value LoadInsns(const Napi::CallbackInfo& info);
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  static Napi::Value FromId(const Napi::CallbackInfo& info);
  static Napi::Object FromOwnedFd(Napi::Env env, int fd, const char* op, const std::string& what);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value SetAutoload(const Napi::CallbackInfo& info);
  Napi::Value Set(const Napi::CallbackInfo& info);
  Napi::Value SetType(const Napi::CallbackInfo& info);
  Napi::Value SetExpectedAttachType(const Napi::CallbackInfo& info);
  Napi::Value SetAttachTarget(const Napi::CallbackInfo& info);
  // attach.cc
  Napi::Value Attach(const Napi::CallbackInfo& info);
  Napi::Value AttachSocket(const Napi::CallbackInfo& info);
  Napi::Value AttachKprobe(const Napi::CallbackInfo& info);
  Napi::Value AttachKsyscall(const Napi::CallbackInfo& info);
  Napi::Value AttachKprobeMulti(const Napi::CallbackInfo& info);
  Napi::Value AttachUprobe(const Napi::CallbackInfo& info);
  Napi::Value AttachUsdt(const Napi::CallbackInfo& info);
  Napi::Value AttachTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachRawTracepoint(const Napi::CallbackInfo& info);
  Napi::Value AttachPerfEvent(const Napi::CallbackInfo& info);
  Napi::Value AttachXdp(const Napi::CallbackInfo& info);
  Napi::Value AttachTc(const Napi::CallbackInfo& info);
  Napi::Value AttachLink(const Napi::CallbackInfo& info);
  Napi::Value AttachCgroup(const Napi::CallbackInfo& info);
  Napi::Value AttachNetns(const Napi::CallbackInfo& info);
  Napi::Value AttachProg(const Napi::CallbackInfo& info);
  Napi::Value AttachIter(const Napi::CallbackInfo& info);
  Napi::Value AttachNetfilter(const Napi::CallbackInfo& info);  // netfilter.cc
  Napi::Object Libbpf(Napi::Env env, bpf_link* link, const char* op, const std::string& target, LogCapture& cap,
                      bool usdt = false);
  int DupFd(Napi::Env env);
  std::string Name();
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  bpf_program* Owned(Napi::Env env, bool mustBeLoaded, bool preLoad = false);
  int Fd(Napi::Env env);

  ObjectRef owner_;
  size_t index_ = 0;
  int fd_ = -1;
  std::string name_;
  uint32_t type_ = 0;
  uint32_t insnCount_ = 0;
};

// ------------------------------------------------------------------ link.cc
// What one attachment is, and so how it is undone.
struct Attachment {
  // kUsdt: a libbpf link with no fd of its own (libbpf's USDT link is a set
  // of uprobes, or an inner uprobe.multi link it does not expose; its fd
  // field is 0 from calloc, and stdin must never be used or closed for it).
  // kStructOps: libbpf's struct_ops link; a kernel link only where the map
  // was made with BPF_F_LINK, else a registration undone by deleting the
  // map's element (its fd is the map's, not ours to use as a link's).
  enum Kind { kLibbpf, kFd, kSocket, kXdpNetlink, kTc, kProgAttach, kUsdt, kStructOps } kind = kLibbpf;
  bpf_link* link = nullptr;  // kLibbpf, kUsdt, kStructOps
  uint32_t mapId = 0;        // kStructOps: the struct_ops map's id
  uint32_t progId = 0;       // kLibbpf, kUsdt: the program's id, for links the kernel cannot describe
  int fd = -1;               // kFd: a kernel link; kSocket: a dup of the socket
  int progFd = -1;           // a dup of the program's fd (kSocket: not owned)
  int targetFd = -1;         // kProgAttach: a dup of the map or cgroup
  uint32_t attachType = 0;   // kProgAttach
  int ifindex = 0;           // kXdpNetlink, kTc
  uint32_t flags = 0;        // kXdpNetlink
  uint32_t tcParent = 0;     // kTc: BPF_TC_INGRESS or BPF_TC_EGRESS
  uint32_t handle = 0, priority = 0;  // kTc
  bool hookCreated = false;  // kTc: bpf_tc_hook_create made the clsact qdisc (it was not there)
};

class Link : public Napi::ObjectWrap<Link> {
 public:
  static Napi::Function Init(Napi::Env env);
  // Takes ownership of what `a` holds.
  static Napi::Object New(Napi::Env env, const Attachment& a);
  static Napi::Object FromLibbpf(Napi::Env env, bpf_link* link, bool usdt = false, uint32_t progId = 0);
  explicit Link(const Napi::CallbackInfo& info);
  ~Link() override;

 private:
  static Napi::Value FromPin(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Unpin(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value IterFd(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  int KernelFd(Napi::Env env, const char* op, const std::string& target = "");
  // Undoes the attachment; false where the kernel refused (a tc filter already gone).
  bool Release();

  Attachment a_;
  bool live_ = false;
};

// -------------------------------------------------------------- perf_event.cc
Napi::Value PerfEventOpen(const Napi::CallbackInfo& info);
// tcFilterCount(ifindex), tcHookDestroy(ifindex): the clsact qdisc of an interface (attach.cc).
Napi::Value TcFilterCount(const Napi::CallbackInfo& info);
Napi::Value TcHookDestroy(const Napi::CallbackInfo& info);

// ------------------------------------------------- ring_buffer.cc, perf_buffer.cc
Napi::Function RingBufferInit(Napi::Env env);
Napi::Function PerfBufferInit(Napi::Env env);
Napi::Function RingMmapInit(Napi::Env env);    // ring_mmap.cc
Napi::Function RingThreadInit(Napi::Env env);  // ring_thread.cc
Napi::Function UserRingBufferInit(Napi::Env env);

// -------------------------------------------------------------- features.cc
Napi::Value ProbeType(const Napi::CallbackInfo& info);
Napi::Value ProbeFeature(const Napi::CallbackInfo& info);

// ------------------------------------------------------------------ info.cc
void InitInfo(Napi::Env env, Napi::Object exports);
// ------------------------------------------------------------- tc_query.cc
void InitTcQuery(Napi::Env env, Napi::Object exports);

// ---------------------------------------------------------------- socket.cc
Napi::Value OpenRawSocket(const Napi::CallbackInfo& info);
Napi::Value IfNameToIndex(const Napi::CallbackInfo& info);

// What kind of bpf object an fd refers to: "bpf-map", "bpf-prog",
// "bpf_link" (the anon inode's name), or "" if it is none.
std::string FdKind(int fd);

// Reads `struct bpf_*_info` for any bpf fd.
template <typename T>
int InfoByFd(int fd, T& out) {
  out = T{};
  __u32 len = sizeof(out);
  return bpf_obj_get_info_by_fd(fd, &out, &len);
}

}  // namespace glue
