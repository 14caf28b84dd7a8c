// BpfProgram: a program of a BpfObject, or a standalone one loaded from
// instructions (BpfProgram.load) or opened from a pin.
import { Socket as DgramSocket } from 'node:dgram';
import { closeSync, constants as fsConstants, createReadStream, openSync, readFileSync, unlinkSync, type ReadStream } from 'node:fs';
import { Socket as NetSocket } from 'node:net';
import { Insn, assemble, disassemble } from './asm.js';
import { BpfError } from './errors.js';
import { features } from './features.js';
import { attachFeature, explain, needing, programFeature } from './internal/unsupported.js';
import { attachHint, targetHint } from './internal/attach_hints.js';
import { addon, type NativeLink, type NativeProgram, type NativeProgramInfo, type NativeTestRunArgs } from './internal/addon.js';
import { netfilterArgs, type NetfilterOptions } from './netfilter.js';
import { releaseOnExit } from './internal/exit_cleanup.js';
import { tcAttached, tcDetached } from './internal/tc_hooks.js';
import { checkInt, checkString, invalidArgType, invalidArgValue, invalidState } from './internal/errors.js';
import { BpfLink } from './link.js';
import { BpfMap } from './map.js';
import {
  PERF_CONFIGS, PERF_TYPES, type CgroupOptions, type IterOptions, type KprobeMultiOptions, type KprobeOptions,
  type KsyscallOptions, type PerfEventOptions, type SockmapOptions, type TcOptions, type UprobeOptions, type UsdtOptions,
  type XdpOptions,
} from './attach_options.js';
import { ATTACH_TYPES, PROG_TYPES, typeName, type AttachType, type ProgramType } from './types.js';
import { native as introspect, programInfo, type ProgramInfo } from './introspect.js';
import { bufferOf } from './internal/views.js';

/**
 * Options of BpfProgram.load (bpf_prog_load): the fields of `union bpf_attr`
 * for BPF_PROG_LOAD this library passes on.
 */
export interface ProgramLoadOptions {
  /** prog_type (BPF_PROG_TYPE_*, by libbpf's name), not 'unspec'. */
  type: ProgramType;
  /** Instructions from `asm`, or their encoding (a whole number of 8-byte `struct bpf_insn`, at least one). */
  insns: readonly Insn[] | Buffer;
  /** Default 'GPL' (needed for GPL-only helpers). */
  license?: string;
  /** prog_name (the kernel keeps at most 15 bytes). */
  name?: string;
  /** expected_attach_type (BPF_*, by libbpf's name), for program types that need one (e.g. cgroup_sock_addr). */
  expectedAttachType?: AttachType;
  /** Verifier log level for a successful load (1, 2, 4; 0-31 accepted, default 0); failures always get a log. The log is then BpfProgram#verifierLog. */
  logLevel?: number;
}

/**
 * Options of BpfProgram#testRun (bpf_prog_test_run_opts, BPF_PROG_TEST_RUN).
 * Only the fields given reach the kernel.
 */
export interface TestRunOptions {
  /** Packet data (socket filter, XDP, tc, ...). */
  data?: Buffer | Uint8Array;
  /** Context (e.g. a struct __sk_buff, or a SYSCALL program's argument). */
  ctx?: Buffer | Uint8Array;
  /** Runs to average `durationNs` over (0 and 1: once; u32). */
  repeat?: number;
  /** Room for the output packet; default data's length plus 512 bytes (at most 16 MiB). */
  dataOutSize?: number;
  /** BPF_F_TEST_* flags. */
  flags?: number;
  /** The CPU to run on (with flags BPF_F_TEST_RUN_ON_CPU). */
  cpu?: number;
}

/** What BpfProgram#testRun returns: the outputs of BPF_PROG_TEST_RUN. */
export interface TestRunResult {
  /** What the program returned (as the kernel reports it: u32). */
  retval: number;
  /** Average run time in ns over `repeat` runs. */
  durationNs: number;
  /** The packet after the program ran (when data was given). */
  dataOut?: Buffer;
  /** The context after the run (when ctx was given). */
  ctxOut?: Buffer;
}

/** Something with a socket fd: a number, or a Node net/dgram socket. */
export type SocketLike = number | NetSocket | DgramSocket;

/** What a program belongs to (its BpfObject). */
export interface ProgramOwner {
  readonly state: string;
}

// Node's sockets keep their fd on an internal handle: net.Socket at
// _handle.fd, dgram.Socket on the handle behind its state symbol (its
// _handle accessor is deprecated, so it is not touched).
function socketFd(sock: SocketLike): number {
  if (typeof sock === 'number') return checkInt('socket', sock, 0, 0x7fff_ffff);
  if (sock === null || typeof sock !== 'object') return invalidArgType('socket', 'a socket fd or a net/dgram socket', sock);
  const handles: unknown[] = [];
  if (sock instanceof DgramSocket) {
    for (const sym of Object.getOwnPropertySymbols(sock)) {
      const v = (sock as unknown as Record<symbol, unknown>)[sym];
      if (v !== null && typeof v === 'object') handles.push((v as { handle?: unknown }).handle);
    }
  } else if (sock instanceof NetSocket) {
    handles.push((sock as { _handle?: unknown })._handle);
  } else {
    return invalidArgType('socket', 'a socket fd or a net/dgram socket', sock);
  }
  for (const h of handles) {
    const fd = h !== null && typeof h === 'object' ? (h as { fd?: unknown }).fd : undefined;
    if (typeof fd === 'number' && fd >= 0) return fd;
  }
  return invalidArgValue('socket', sock, 'has no open fd yet (bind or connect it first)');
}

/** An interface by name or index. */
function ifindexOf(iface: string | number): number {
  if (typeof iface === 'number') return checkInt('interface', iface, 1, 0x7fff_ffff);
  return addon.ifNameToIndex(checkString('interface', iface));
}

/** How errors name an interface: 'veth0 (ifindex 3)' or 'ifindex 3'. */
function ifaceLabel(iface: string | number, ifindex: number): string {
  return typeof iface === 'string' ? `${iface} (ifindex ${ifindex})` : `ifindex ${ifindex}`;
}

function attachTypeOf(name: string, t: unknown): number {
  const v = ATTACH_TYPES.indexOf(t as AttachType);
  if (v < 0) invalidArgValue(name, t, 'is not an attach type');
  return v;
}

function onlineCpus(): number[] {
  const cpus: number[] = [];
  for (const range of readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
    const [a, b] = range.split('-').map(Number) as [number, number?];
    for (let c = a; c <= (b ?? a); c++) cpus.push(c);
  }
  return cpus;
}

function withFd<T>(path: string, flags: number, fn: (fd: number) => T): T {
  const fd = openSync(path, flags);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** @internal The hint of a BpfError that prog.attach() gave one (obj.attach() reports it as the reason). */
export const attachHints = new WeakMap<BpfError, string>();

// XDP_FLAGS_* of linux/if_link.h
const XDP_MODES = { generic: 1 << 1, native: 1 << 2, offload: 1 << 3 } as const;
// enum bpf_tc_attach_point
const TC_POINTS = { ingress: 1, egress: 2 } as const;

// The most a test run can hand back: a packet the kernel built from at most
// a page of linear data plus its fragments is far below this; a larger room
// would only be memory allocated for nothing.
const MAX_TEST_RUN_OUT = 16 << 20;

function bytes(name: string, v: Buffer | Uint8Array): Buffer {
  if (v instanceof Uint8Array) return bufferOf(v);
  return invalidArgType(name, 'a Buffer or Uint8Array', v);
}

/**
 * A BPF program (libbpf's `struct bpf_program`, or a program fd): its
 * metadata, its pre-load settings (libbpf's bpf_program__set_*), and the
 * attach methods that make BpfLinks. Obtained from an object
 * (`obj.program('name')`, `obj.programs`, a skeleton's `programs`), loaded
 * standalone from instructions with BpfProgram.load() (bpf_prog_load), or
 * opened with BpfProgram.fromPin() (bpf_obj_get) and BpfProgram.fromId()
 * (bpf_prog_get_fd_by_id).
 *
 * Setters work only on a program of an object before load(); attach
 * methods, testRun() and pin() need it loaded. Either rule broken is a
 * TypeError with code ERR_INVALID_STATE.
 *
 * Ownership: a program of an object belongs to it (and keeps it alive); its
 * fd is closed by the object's close(). A standalone, pinned or by-id program
 * owns its fd. The program keeps each link it made until that link's
 * detach(); close() detaches them all (and closes the fd the program owns),
 * is idempotent, and is what `using` calls (Symbol.dispose). After close()
 * (or the object's), every use throws TypeError ERR_INVALID_STATE.
 *
 * Attach failures throw BpfError with `op` naming the libbpf call
 * (bpf_program__attach_kprobe, bpf_link_create, ...) and, where a probe
 * finds the kernel lacks the hook, `unsupported` naming the feature.
 *
 * @example
 * ```ts
 * using obj = new BpfObject('trace.bpf.o');
 * obj.load();
 * const prog = obj.program('handle_exec');
 * using link = prog.attachTracepoint('sched', 'sched_process_exec');
 *
 * // a standalone program from instructions
 * using ret0 = BpfProgram.load({ type: 'socket_filter', insns: [asm.mov64Imm(asm.R0, 0), asm.exit()] });
 * ret0.testRun({ data: Buffer.alloc(64) }).retval; // 0
 * ```
 */
export class BpfProgram {
  #native: NativeProgram;
  #owner: ProgramOwner | undefined;
  #info: NativeProgramInfo | undefined;
  #links = new Set<BpfLink>();
  #closed = false;
  #pinPath: string | undefined;
  #verifierLog: string | undefined;
  // Kept for messages about a program whose object is gone.
  readonly #name: string;

  /** @internal Programs are made by BpfObject, BpfProgram.load() and BpfProgram.fromPin(). */
  constructor(native: NativeProgram, owner?: ProgramOwner) {
    this.#native = native;
    this.#owner = owner;
    this.#verifierLog = native.verifierLog;
    this.#name = native.info().name;
  }

  /** Loads hand-written instructions (bpf_prog_load), like the kernel's samples/bpf/sock_example. */
  static load(opts: ProgramLoadOptions): BpfProgram {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    const type = PROG_TYPES.indexOf(opts.type);
    if (type <= 0) invalidArgValue('opts.type', opts.type, `must be one of ${PROG_TYPES.slice(1).join(', ')}`);
    let insns: Buffer;
    if (Buffer.isBuffer(opts.insns)) insns = opts.insns;
    else if (Array.isArray(opts.insns)) insns = assemble(opts.insns);
    else return invalidArgType('opts.insns', 'an array of asm instructions or a Buffer', opts.insns);
    if (insns.length === 0 || insns.length % 8 !== 0) {
      invalidArgValue('opts.insns', insns, 'must hold whole 8-byte instructions, at least one');
    }
    const license = checkString('opts.license', opts.license ?? 'GPL');
    const name = opts.name === undefined ? null : checkString('opts.name', opts.name);
    let attachType = 0;
    if (opts.expectedAttachType !== undefined) {
      attachType = ATTACH_TYPES.indexOf(opts.expectedAttachType);
      if (attachType < 0) invalidArgValue('opts.expectedAttachType', opts.expectedAttachType, 'is not an attach type');
    }
    const logLevel = opts.logLevel === undefined ? 0 : checkInt('opts.logLevel', opts.logLevel, 0, 31);
    return new BpfProgram(addon.NativeProgram.load(type, insns, license, name, attachType, logLevel));
  }

  /** Opens a program pinned in bpffs (bpf_obj_get). */
  static fromPin(path: string): BpfProgram {
    return new BpfProgram(addon.NativeProgram.fromPin(checkString('path', path)));
  }

  /**
   * Opens a program by its kernel id (bpf_prog_get_fd_by_id): any loader's
   * program, or one whose id a prog array holds. The BpfProgram owns its
   * fd: close() it (or `using`) when done.
   */
  static fromId(id: number): BpfProgram {
    return new BpfProgram(addon.NativeProgram.fromId(checkInt('id', id, 1, 0xffff_ffff)));
  }

  /**
   * Every program in the kernel (bpf_prog_get_next_id), opened one at a
   * time as the iteration reaches it; a program gone in between is skipped.
   * Each BpfProgram owns its fd: close() it (or `using`).
   */
  static async *list(): AsyncGenerator<BpfProgram, void, undefined> {
    for (let id = introspect.nextId('prog', 0); id !== 0; id = introspect.nextId('prog', id)) {
      let prog: BpfProgram;
      try {
        prog = BpfProgram.fromId(id);
      } catch (e) {
        if (e instanceof BpfError && e.code === 'ENOENT') continue;
        throw e;
      }
      yield prog;
    }
  }

  #live(): NativeProgram {
    if (this.#closed) invalidState(`program '${this.#name}' is closed`);
    if (this.#owner?.state === 'closed') invalidState(`program '${this.#name}' belongs to a closed BpfObject`);
    return this.#native;
  }

  #loaded(): NativeProgram {
    const native = this.#live();
    if (this.#owner && this.#owner.state !== 'loaded') {
      invalidState(`program '${this.name}' is not in the kernel yet: load() its BpfObject first`);
    }
    return native;
  }

  #preLoad(what: string): NativeProgram {
    const native = this.#live();
    if (!this.#owner) invalidState(`${what} applies only to a program of a BpfObject`);
    if (this.#owner.state !== 'opened') invalidState(`${what} can only change before load()`);
    return native;
  }

  #meta(): NativeProgramInfo {
    if (this.#info) return this.#info;
    const info = this.#live().info();
    if (!this.#owner || this.#owner.state === 'loaded') this.#info = info;
    return info;
  }

  /** The program's name (bpf_program__name: the C function's name; the kernel's prog_name, at most 15 bytes, for pins and ids). */
  get name(): string { return this.#name; }
  /** The ELF section (SEC()); empty for standalone programs. */
  get section(): string { return this.#meta().section; }
  /** The program type (BPF_PROG_TYPE_*, by libbpf's name; 'unknown(N)' for types newer than this library). */
  get type(): ProgramType { return typeName(PROG_TYPES, this.#meta().type); }
  /** Settable before load(), where libbpf allows it (e.g. a generic section). */
  set type(t: ProgramType) {
    const v = PROG_TYPES.indexOf(t);
    if (v <= 0) invalidArgValue('type', t, 'is not a program type');
    this.#preLoad('type').setType(v);
  }
  /** expected_attach_type (bpf_program__expected_attach_type); settable before load(). */
  get expectedAttachType(): AttachType | undefined {
    const v = this.#meta().expectedAttachType;
    return v === undefined ? undefined : typeName(ATTACH_TYPES, v);
  }
  set expectedAttachType(t: AttachType | undefined) {
    const v = t === undefined ? 0 : ATTACH_TYPES.indexOf(t);
    if (v < 0) invalidArgValue('expectedAttachType', t, 'is not an attach type');
    this.#preLoad('expectedAttachType').setExpectedAttachType(v);
  }
  /** Whether load() loads this program (bpf_program__set_autoload); settable before load(). */
  get autoload(): boolean { return this.#meta().autoload ?? true; }
  set autoload(on: boolean) {
    if (typeof on !== 'boolean') invalidArgType('autoload', 'of type boolean', on);
    this.#preLoad('autoload').setAutoload(on);
  }
  // The setters below are libbpf's bpf_program__set_*: on a program of a
  // BpfObject before load() only (a TypeError with code ERR_INVALID_STATE after).
  /** false: BpfObject#attach() leaves the program alone (it is still loaded). */
  get autoattach(): boolean { return this.#meta().autoattach ?? true; }
  set autoattach(on: boolean) {
    if (typeof on !== 'boolean') invalidArgType('autoattach', 'of type boolean', on);
    this.#preLoad('autoattach').set('autoattach', on);
  }
  /** BPF_F_* load flags (BPF_F_SLEEPABLE, BPF_F_TEST_RND_HI32, BPF_F_XDP_HAS_FRAGS, ...), as libbpf will pass them. */
  get flags(): number { return this.#meta().flags ?? 0; }
  set flags(n: number) {
    this.#preLoad('flags').set('flags', checkInt('flags', n, 0, 0xffff_ffff));
  }
  /**
   * The verifier's log level for this program (1, 2, 4; 0: none): a
   * successful load then keeps the log in `verifierLog`.
   */
  get logLevel(): number { return this.#meta().logLevel ?? 0; }
  set logLevel(n: number) {
    this.#preLoad('logLevel').set('logLevel', checkInt('logLevel', n, 0, 31));
  }
  /** The device an offloaded program is loaded for (0: none), as set before load(). */
  get ifindex(): number { return this.#meta().ifindex ?? 0; }
  set ifindex(n: number) {
    this.#preLoad('ifindex').set('ifindex', checkInt('ifindex', n, 0, 0x7fff_ffff));
  }
  /** The BTF attach target set before load() (undefined: the section's). */
  get attachTarget(): string | undefined { return this.#meta().attachTarget; }
  /** The kernel BTF type id the loaded program attaches to (BTF-based programs; 0 for others). */
  get attachBtfId(): number | undefined { return this.#meta().attachBtfId; }
  /** -1 until loaded. */
  get fd(): number { return this.#meta().fd; }
  /** The kernel's program id, once loaded. */
  get id(): number | undefined { return this.#meta().id; }
  /** The kernel's 8-byte program tag, in hex. */
  get tag(): string | undefined { return this.#meta().tag; }
  /** Instructions in the ELF (or loaded, for standalone programs), in 8-byte slots. */
  get insnCount(): number { return this.#meta().insnCount; }
  /** Instructions after the verifier's rewrites. */
  get xlatedInsnCount(): number | undefined { return this.#meta().xlatedInsnCount; }
  /**
   * What the kernel says of the loaded program now (bpf_obj_get_info_by_fd):
   * id, tag, type, map ids, sizes, and the run-time counters (runCount and
   * runTimeNs grow only while enableStats() is on). Each call asks the
   * kernel again. Before load() or after close(): TypeError ERR_INVALID_STATE.
   */
  info(): ProgramInfo {
    this.#loaded();
    const fd = this.#meta().fd;
    if (fd < 0) invalidState(`program '${this.#name}' was not loaded (autoload off?)`);
    return programInfo(fd);
  }

  /**
   * The instructions the kernel runs, after the verifier's rewrites (the
   * "xlated" program, as `bpftool prog dump xlated` shows), decoded with the
   * asm module: each Insn has `text` and `bytes`. Map references read as the
   * kernel rewrote them (map addresses or ids).
   */
  xlatedInstructions(): Insn[] {
    return disassemble(this.#kernelBytes(false), { mapRefs: 'id' });
  }

  /** The JIT's machine code for the program (empty without the JIT), as bytes. */
  jitedBytes(): Buffer {
    return this.#kernelBytes(true);
  }

  #kernelBytes(jited: boolean): Buffer {
    this.#loaded();
    const fd = this.#meta().fd;
    if (fd < 0) invalidState(`program '${this.#name}' was not loaded (autoload off?)`);
    return introspect.progInsns(fd, jited);
  }

  /** True after close(), or once the program's object is closed. */
  get closed(): boolean { return this.#closed || this.#owner?.state === 'closed'; }
  /**
   * The verifier's output for a successful load, when one was asked for
   * (`logLevel` of BpfProgram.load, `kernelLogLevel` of a BpfObject). A
   * rejected program's log is on its VerifierError.
   */
  get verifierLog(): string | undefined { return this.#verifierLog ?? this.#meta().verifierLog; }
  /** The links of this program that are still attached. */
  get links(): readonly BpfLink[] { return [...this.#links]; }

  #link(native: NativeLink, tc?: { destroyHook: boolean | undefined }): BpfLink {
    // Netlink XDP and tc filters outlive the process unless released. A tc
    // filter's release also removes the clsact qdisc where that is ours to
    // remove (internal/tc_hooks.ts), at detach() as at exit.
    const info = native.info();
    let release: { detach(): void } = native;
    if (info.kind === 'tc') {
      const ifindex = info.ifindex ?? 0;
      tcAttached(ifindex, info.hookCreated === true);
      let done = false;
      release = {
        detach(): void {
          if (done) return;
          done = true;
          tcDetached(ifindex, native.detach(), tc?.destroyHook);
        },
      };
    }
    const forget = info.kind === 'xdp_netlink' || info.kind === 'tc' ? releaseOnExit(release) : undefined;
    const link = new BpfLink(native, (l) => {
      this.#links.delete(l);
      forget?.();
    }, release === native ? undefined : release);
    this.#links.add(link);
    return link;
  }

  /**
   * Attaches by the program's section, as libbpf's bpf_program__attach()
   * does. A section that names no target libbpf can attach to (SEC("tc"),
   * SEC("xdp"), SEC("socket"), SEC("kprobe") without a function, ...) is a
   * BpfError EOPNOTSUPP (op bpf_program__attach, as libbpf answers) whose
   * message names the method to call instead (attachTc, attachXdp, ...):
   * the same code as before, so callers that tell "no target" from real
   * failures by it keep working.
   */
  attach(): BpfLink {
    const native = this.#loaded();
    if (!this.#owner) invalidState('a standalone program has no section to attach by');
    let made: NativeLink;
    try {
      made = native.attach();
    } catch (e) {
      const hinted = this.#withAttachHint(e);
      if (hinted !== e) throw hinted;
      const [feature, probe] = attachFeature(this.section, this.type);
      throw explain(e, feature, probe);
    }
    return this.#link(made);
  }

  // libbpf's bare EOPNOTSUPP for a section it cannot attach by (it tried
  // nothing: no attach function for the section, or a section without its
  // target), turned into one that says what to call. That comes before any
  // feature probe: SEC("kprobe") needs a function on every kernel. The
  // kernel's own EOPNOTSUPP from a real attempt (libbpf logs it) keeps its
  // error, explained by the probes.
  #withAttachHint(e: unknown): unknown {
    if (!(e instanceof BpfError) || e.code !== 'EOPNOTSUPP' || e.op !== 'bpf_program__attach') return e;
    const hint = targetHint(this.section, this.type) ?? (e.log.trim() === '' ? attachHint(this.section, this.type) : undefined);
    if (hint === undefined) return e;
    const err = new BpfError({ errno: e.errno, op: e.op, target: e.target, log: e.log, program: this.name },
      `bpf_program__attach(${this.section}) failed: EOPNOTSUPP: program '${this.name}': ${hint}`);
    Object.defineProperty(err, 'cause', { value: e, enumerable: false, writable: true, configurable: true });
    attachHints.set(err, hint);
    return err;
  }

  /**
   * @internal What obj.attach() does with this program: attach it, or skip
   * it for this reason (not loaded, autoattach off).
   */
  autoAttachSkip(): string | undefined {
    const m = this.#meta();
    if (m.autoload === false) return 'autoload is off: the program was not loaded';
    if (m.autoattach === false) return 'autoattach is off (prog.autoattach = false)';
    return undefined;
  }

  #options<T extends object>(opts: T): T {
    if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
    return opts;
  }

  /** A kprobe (or kretprobe) on a kernel function. */
  attachKprobe(func: string, opts: KprobeOptions = {}): BpfLink {
    const o = this.#options(opts);
    const native = this.#loaded();
    const offset = o.offset === undefined ? 0 : checkInt('opts.offset', o.offset, 0, 0x7fff_ffff);
    const f = checkString('func', func);
    return this.#link(needing('kprobes', features.kprobes, () => native.attachKprobe(f, o.retprobe === true, offset)));
  }

  /** A kprobe on a system call by its name ('getpid'), whatever the architecture calls its function. */
  attachKsyscall(name: string, opts: KsyscallOptions = {}): BpfLink {
    const o = this.#options(opts);
    const native = this.#loaded();
    const n = checkString('name', name);
    return this.#link(needing('kprobes', features.kprobes, () => native.attachKsyscall(n, o.retprobe === true)));
  }

  /** One kprobe.multi link over many kernel functions (a glob or a list). */
  attachKprobeMulti(opts: KprobeMultiOptions): BpfLink {
    const o = this.#options(opts);
    if ((o.pattern === undefined) === (o.symbols === undefined)) {
      invalidArgValue('opts', o, 'needs exactly one of pattern and symbols');
    }
    const pattern = o.pattern === undefined ? null : checkString('opts.pattern', o.pattern);
    const symbols = o.symbols === undefined ? null : [...o.symbols].map((x, i) => checkString(`opts.symbols[${i}]`, x));
    const native = this.#loaded();
    return this.#link(needing('kprobeMulti', features.kprobeMulti,
      () => native.attachKprobeMulti(pattern, symbols, o.retprobe === true)));
  }

  /** A uprobe (or uretprobe) on a function of a binary or library; libbpf resolves the symbol. */
  attachUprobe(opts: UprobeOptions): BpfLink {
    const o = this.#options(opts);
    const binary = checkString('opts.binary', o.binary);
    const symbol = o.symbol === undefined ? null : checkString('opts.symbol', o.symbol);
    const offset = o.offset === undefined ? 0 : checkInt('opts.offset', o.offset, 0, Number.MAX_SAFE_INTEGER);
    if (symbol === null && o.offset === undefined) invalidArgValue('opts', o, 'needs a symbol or an offset');
    const pid = o.pid === undefined ? -1 : checkInt('opts.pid', o.pid, -1, 0x7fff_ffff);
    return this.#link(this.#loaded().attachUprobe(binary, symbol, offset, pid, o.retprobe === true));
  }

  /** A USDT probe (a static tracepoint compiled into a binary, <sys/sdt.h>). */
  attachUsdt(opts: UsdtOptions): BpfLink {
    const o = this.#options(opts);
    const pid = o.pid === undefined ? -1 : checkInt('opts.pid', o.pid, -1, 0x7fff_ffff);
    if (o.cookie !== undefined && typeof o.cookie !== 'bigint') invalidArgType('opts.cookie', 'of type bigint', o.cookie);
    const native = this.#loaded();
    const args = [checkString('opts.binary', o.binary), checkString('opts.provider', o.provider),
      checkString('opts.name', o.name)] as const;
    // libbpf's USDT support leans on BPF cookies (5.15) for all but the simplest cases.
    return this.#link(needing('bpfCookie', features.bpfCookie, () => native.attachUsdt(...args, pid, o.cookie ?? 0n)));
  }

  /** A tracepoint of tracefs (events/CATEGORY/NAME). */
  attachTracepoint(category: string, name: string): BpfLink {
    return this.#link(this.#loaded().attachTracepoint(checkString('category', category), checkString('name', name)));
  }

  /** A raw tracepoint by its name ('sched_switch'; bpf_program__attach_raw_tracepoint), a 'raw_tracepoint' link. */
  attachRawTracepoint(name: string): BpfLink {
    return this.#link(this.#loaded().attachRawTracepoint(checkString('name', name)));
  }

  /**
   * Opens a perf event and attaches to it: one link for one CPU (or a
   * process), or one per online CPU with `cpu: 'all'` (the default).
   */
  attachPerfEvent(opts: PerfEventOptions & { cpu: number }): BpfLink;
  attachPerfEvent(opts: PerfEventOptions): BpfLink[];
  attachPerfEvent(opts: PerfEventOptions): BpfLink | BpfLink[] {
    const o = this.#options(opts);
    const native = this.#loaded();
    const type = typeof o.type === 'number' ? checkInt('opts.type', o.type, 0, 0xffff_ffff)
      : Object.hasOwn(PERF_TYPES, o.type) ? PERF_TYPES[o.type] : invalidArgValue('opts.type', o.type, `must be one of ${Object.keys(PERF_TYPES).join(', ')}`);
    let config: number | bigint;
    if (typeof o.config === 'string') {
      const names: Readonly<Record<string, number>> | undefined = type === 0 ? PERF_CONFIGS.hardware : type === 1 ? PERF_CONFIGS.software : undefined;
      if (!names || !Object.hasOwn(names, o.config)) invalidArgValue('opts.config', o.config, 'is not a known hardware or software event name');
      config = names[o.config]!;
    } else if (typeof o.config === 'bigint') {
      config = o.config;
    } else {
      config = checkInt('opts.config', o.config, 0, Number.MAX_SAFE_INTEGER);
    }
    if ((o.sampleFreq === undefined) === (o.samplePeriod === undefined)) {
      invalidArgValue('opts', o, 'needs exactly one of sampleFreq and samplePeriod');
    }
    const isFreq = o.sampleFreq !== undefined;
    const sample = checkInt(isFreq ? 'opts.sampleFreq' : 'opts.samplePeriod', isFreq ? o.sampleFreq : o.samplePeriod, 1, Number.MAX_SAFE_INTEGER);
    const pid = o.pid === undefined ? -1 : checkInt('opts.pid', o.pid, -1, 0x7fff_ffff);
    const one = (cpu: number): BpfLink =>
      this.#link(native.attachPerfEvent(addon.perfEventOpen(type, config, sample, isFreq, pid, cpu)));
    if (typeof o.cpu === 'number') return one(checkInt('opts.cpu', o.cpu, -1, 0xffff));
    if (o.cpu !== undefined && o.cpu !== 'all') invalidArgValue('opts.cpu', o.cpu, "must be a CPU number or 'all'");
    const links: BpfLink[] = [];
    try {
      for (const cpu of onlineCpus()) links.push(one(cpu));
    } catch (e) {
      for (const l of links) l.detach();
      throw e;
    }
    return links;
  }

  /**
   * XDP on an interface: a kernel link by default; with `replace`, through
   * netlink, replacing the program the interface runs.
   */
  attachXdp(iface: string | number, opts: XdpOptions = {}): BpfLink {
    const o = this.#options(opts);
    let flags = 0;
    if (o.mode !== undefined) {
      if (!Object.hasOwn(XDP_MODES, o.mode)) invalidArgValue('opts.mode', o.mode, "must be 'native', 'generic' or 'offload'");
      flags = XDP_MODES[o.mode];
    }
    const native = this.#loaded();
    const ifindex = ifindexOf(iface);
    if (o.replace) return this.#link(native.attachXdp(ifindex, flags));
    return this.#link(native.attachLink(ifindex, ATTACH_TYPES.indexOf('xdp'), flags, ifindex, `xdp on ${ifaceLabel(iface, ifindex)}`));
  }

  /** tc on an interface: tcx where the kernel has it, else a filter on its clsact qdisc. */
  attachTc(iface: string | number, opts: TcOptions): BpfLink {
    const o = this.#options(opts);
    if (!Object.hasOwn(TC_POINTS, o.direction)) invalidArgValue('opts.direction', o.direction, "must be 'ingress' or 'egress'");
    const priority = o.priority === undefined ? 0 : checkInt('opts.priority', o.priority, 1, 0xffff);
    const handle = o.handle === undefined ? 0 : checkInt('opts.handle', o.handle, 1, 0xffff_ffff);
    const classic = o.tcx === false || priority !== 0 || handle !== 0;
    if (o.tcx === true && classic) invalidArgValue('opts', o, 'tcx has no priority or handle');
    const native = this.#loaded();
    const ifindex = ifindexOf(iface);
    if (!classic) {
      const type = o.direction === 'ingress' ? 'tcx_ingress' : 'tcx_egress';
      try {
        return this.#link(native.attachLink(ifindex, ATTACH_TYPES.indexOf(type), 0, ifindex, `${type} on ${ifaceLabel(iface, ifindex)}`));
      } catch (e) {
        // A kernel without tcx (before 6.6) refuses the attach type; any
        // other refusal (a program that is not sched_cls, ...) is the answer.
        const tcProgram = this.type === 'sched_cls' || this.type === 'sched_act';
        if (o.tcx === true) throw explain(e, 'tcx', features.tcx);
        if (!tcProgram || !(e instanceof BpfError) || e.code !== 'EINVAL') throw e;
      }
    }
    if (o.destroyHook !== undefined && typeof o.destroyHook !== 'boolean') invalidArgType('opts.destroyHook', 'of type boolean', o.destroyHook);
    return this.#link(native.attachTc(ifindex, TC_POINTS[o.direction], priority, handle), { destroyHook: o.destroyHook });
  }

  /** A cgroup (v2 directory) hook; `type` where the section does not name one. */
  attachCgroup(path: string, opts: CgroupOptions = {}): BpfLink {
    const o = this.#options(opts);
    const native = this.#loaded();
    checkString('path', path);
    const type = o.type === undefined ? undefined : attachTypeOf('opts.type', o.type);
    return withFd(path, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY, (fd) => this.#link(type === undefined
      ? native.attachCgroup(fd, path)
      : native.attachLink(fd, type, 0, 0, `${o.type!} on ${path}`)));
  }

  /** A network namespace hook (sk_lookup, flow_dissector); default: this process's namespace. */
  attachNetns(path = '/proc/self/ns/net'): BpfLink {
    const native = this.#loaded();
    return withFd(checkString('path', path), fsConstants.O_RDONLY, (fd) => this.#link(native.attachNetns(fd, path)));
  }

  /** sk_msg / sk_skb programs on a sockmap or sockhash (bpf_prog_attach). */
  attachSockmap(map: BpfMap, opts: SockmapOptions = {}): BpfLink {
    const o = this.#options(opts);
    const native = this.#loaded();
    if (!(map instanceof BpfMap)) invalidArgType('map', 'a BpfMap', map);
    const type = o.type ?? this.expectedAttachType;
    if (type === undefined) invalidArgValue('opts.type', type, 'is needed: the program has no expected attach type');
    return this.#link(native.attachProg(map.liveFd(), attachTypeOf('opts.type', type), `${type} on map '${map.name}'`));
  }

  /**
   * A netfilter hook (SEC("netfilter"), Linux 6.4): a BPF_NETFILTER kernel
   * link (bpf_link_create), undone by detach() or when the process exits.
   * Bad options are a TypeError/RangeError before any syscall; a kernel
   * without netfilter programs gives a BpfError whose `unsupported` is
   * 'netfilter'.
   * @example
   * using link = prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: -128 });
   */
  attachNetfilter(opts: NetfilterOptions): BpfLink {
    const args = netfilterArgs(opts);
    const native = this.#loaded();
    return this.#link(needing('netfilter', features.netfilter, () => native.attachNetfilter(...args)));
  }

  /**
   * Runs a bpf_iter program and streams what it prints (BPF_SEQ_PRINTF) as
   * a Readable; the iterator's link is detached when the stream closes.
   */
  iter(opts: IterOptions = {}): ReadStream {
    const o = this.#options(opts);
    const native = this.#loaded();
    if (o.map !== undefined && !(o.map instanceof BpfMap)) invalidArgType('opts.map', 'a BpfMap', o.map);
    const [feature, probe] = programFeature(this.section, this.type);
    const link = this.#link(needing(feature, probe, () => native.attachIter(o.map ? o.map.liveFd() : -1)));
    let fd: number;
    try {
      fd = link.iterFd();
    } catch (e) {
      link.detach();
      throw e;
    }
    const stream = createReadStream('', { fd, autoClose: true });
    stream.once('close', () => link.detach());
    return stream;
  }

  /** The BTF target of fentry/fexit/fmod_ret/LSM-style programs, before load(). */
  set attachTarget(name: string) {
    this.#preLoad('attachTarget').setAttachTarget(checkString('attachTarget', name));
  }

  /**
   * Attaches a socket filter (SO_ATTACH_BPF) to a socket fd, or to a Node
   * net/dgram socket. The link keeps its own reference to the socket, so
   * detach() never touches another socket that reused the fd number.
   */
  attachSocket(socket: SocketLike): BpfLink {
    const native = this.#loaded();
    return this.#link(native.attachSocket(socketFd(socket)));
  }

  /** Runs the program once (or `repeat` times) in the kernel (BPF_PROG_TEST_RUN). */
  testRun(opts: TestRunOptions = {}): TestRunResult {
    const native = this.#loaded();
    // Only what the caller gave reaches the kernel: SYSCALL programs, for
    // one, reject data, ctx_out and repeat; raw tracepoints reject all
    // three too (their ctx is the tracepoint's u64 arguments, read only).
    const args: NativeTestRunArgs = {};
    const ctxOut = this.type !== 'syscall' && this.type !== 'raw_tracepoint';
    if (opts.data !== undefined) {
      args.data = bytes('opts.data', opts.data);
      args.dataOutSize = opts.dataOutSize === undefined
        ? args.data.length + 512 : checkInt('opts.dataOutSize', opts.dataOutSize, 0, MAX_TEST_RUN_OUT);
    }
    if (opts.ctx !== undefined) {
      args.ctx = Buffer.from(bytes('opts.ctx', opts.ctx));
      if (ctxOut) args.ctxOutSize = args.ctx.length;
    }
    if (opts.repeat !== undefined) args.repeat = checkInt('opts.repeat', opts.repeat, 0, 0xffff_ffff);
    if (opts.flags !== undefined) args.flags = checkInt('opts.flags', opts.flags, 0, 0xffff_ffff);
    if (opts.cpu !== undefined) args.cpu = checkInt('opts.cpu', opts.cpu, 0, 0xffff_ffff);
    try {
      const result = native.testRun(args);
      // A SYSCALL program's context is written back in place (it has no ctx_out).
      if (args.ctx && this.type === 'syscall') result.ctxOut = args.ctx;
      return result;
    } catch (e) {
      // The output did not fit: the kernel said how much room it needs.
      const need = (e as { dataSizeOut?: number }).dataSizeOut;
      if (e instanceof BpfError && e.code === 'ENOSPC' && need && args.data && opts.dataOutSize === undefined) {
        return native.testRun({ ...args, dataOutSize: need });
      }
      throw e;
    }
  }

  /** Pins the program in bpffs (bpf_obj_pin). */
  pin(path: string): void {
    this.#loaded().pin(checkString('path', path));
    this.#pinPath = path;
  }

  /**
   * Removes a pin (unlink of the bpffs file; by default the one pin() made).
   * No path and no pin() is a TypeError ERR_INVALID_STATE.
   */
  unpin(path: string | undefined = this.#pinPath): void {
    if (path === undefined) invalidState(`program '${this.name}' has no pin to remove`);
    unlinkSync(checkString('path', path));
    if (path === this.#pinPath) this.#pinPath = undefined;
  }

  /** @internal Detaches every link of this program (its object is closing). */
  detachAll(): void {
    for (const link of [...this.#links]) link.detach();
  }

  /**
   * Detaches this program's links; a standalone program's fd is closed too
   * (a program of an object is closed with the object). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.detachAll();
    this.#closed = true;
    if (!this.#owner) this.#native.close();
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
