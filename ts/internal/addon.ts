// The native addon: loaded once with node-gyp-build (build/Release, then
// prebuilds/) and given the error factory. Only ts/ imports this module.
import * as path from 'node:path';
import { makeError, type FailureInfo } from '../errors.js';
import type { NativeStream, OnBatch } from './stream.js';

export interface NativeMapInfo {
  name: string;
  type: number;
  keySize: number;
  valueSize: number;
  /** Bytes of one lookup: valueSize, or an 8-byte aligned slot per CPU. */
  valueBytes: number;
  maxEntries: number;
  flags: number;
  ifindex: number;
  fd: number;
  id: number;
  btfKeyTypeId: number;
  btfValueTypeId: number;
  internal: boolean;
  pinPath?: string;
  /** BPF_F_NUMA_NODE's node, as set before load (maps of an object). */
  numaNode?: number;
  /** map_extra (bloom filters: the number of hash functions); the kernel's once created. */
  mapExtra: bigint;
  autocreate?: boolean;
  innerMapSet?: boolean;
  reused?: boolean;
}

/** What NativeMap.set() changes (bpf_map__set_*). */
export type NativeMapSetting =
  | ['type' | 'keySize' | 'valueSize' | 'flags' | 'numaNode' | 'ifindex', number]
  | ['mapExtra', bigint]
  | ['autocreate', boolean]
  | ['pinPath', string | null];

export interface NativeMap {
  info(): NativeMapInfo;
  setMaxEntries(n: number): void;
  set(...setting: NativeMapSetting): void;
  setInnerMapFd(fd: number): void;
  reuseFd(fd: number): void;
  lookup(key: Buffer | null, out: Buffer, flags: number): boolean;
  update(key: Buffer | null, value: Buffer, flags: number): void;
  delete(key: Buffer | null): boolean;
  lookupAndDelete(key: Buffer | null, out: Buffer): boolean;
  nextKey(key: Buffer | null, out: Buffer): boolean;
  lookupBatch(inToken: Buffer | null, outToken: Buffer, keys: Buffer, values: Buffer, count: number, del?: boolean): [number, boolean];
  updateBatch(keys: Buffer, values: Buffer, count: number, flags: number): number;
  /** [keys processed, stopped at a missing key]. */
  deleteBatch(keys: Buffer, count: number): [number, boolean];
  /** op: 0 lookup, 1 update, 2 delete, 3 lookup_and_delete; found[i] = 0 for a missing key. */
  eachElem(op: 0 | 1 | 2 | 3, keys: Buffer | null, values: Buffer | null, count: number, flags: number, found: Buffer | null): number;
  /**
   * The per-op fast path's key (at 0) and value (at valueOffset) bytes, and
   * the map's slot for NativeMap.scratchOps(): the op's argument (flags;
   * for nextKey, 1 to start from the key) is the u32 at ctlOffset, and its
   * result (1 done or found, 0 not found) the u32 after it.
   */
  scratch(valueOffset: number, size: number, hasKey: boolean, nextOffset: number, ctlOffset: number): [ArrayBuffer, number];
  /** An ArrayBuffer over the first `bytes` bytes of the map's mmap (BPF_F_MMAPABLE). */
  memory(bytes: number): ArrayBuffer;
  detachMemory(memory: ArrayBuffer): void;
  freeze(): void;
  /** The map's BTF from the kernel, raw (maps without an object); null without one. */
  btf(): Buffer | null;
  pin(path: string): void;
  attachStructOps(): NativeLink;
  readGlobal(offset: number, size: number): Buffer;
  writeGlobal(offset: number, bytes: Buffer): void;
  close(): void;
}

export interface NativeProgramInfo {
  name: string;
  section: string;
  type: number;
  expectedAttachType?: number;
  autoload?: boolean;
  autoattach?: boolean;
  flags?: number;
  logLevel?: number;
  attachTarget?: string;
  ifindex?: number;
  attachBtfId?: number;
  attachBtfObjId?: number;
  insnCount: number;
  fd: number;
  id?: number;
  tag?: string;
  xlatedInsnCount?: number;
  jitedBytes?: number;
  verifierLog?: string;
}

export interface NativeTestRunArgs {
  data?: Buffer;
  dataOutSize?: number;
  ctx?: Buffer;
  ctxOutSize?: number;
  repeat?: number;
  flags?: number;
  cpu?: number;
}

export interface NativeTestRunResult {
  retval: number;
  durationNs: number;
  dataOut?: Buffer;
  ctxOut?: Buffer;
}

export interface NativeProgram {
  info(): NativeProgramInfo;
  setAutoload(on: boolean): void;
  set(field: 'flags' | 'logLevel' | 'ifindex', value: number): void;
  set(field: 'autoattach', value: boolean): void;
  setType(type: number): void;
  setExpectedAttachType(type: number): void;
  setAttachTarget(name: string): void;
  attach(): NativeLink;
  attachSocket(fd: number): NativeLink;
  attachKprobe(func: string, retprobe: boolean, offset: number): NativeLink;
  attachKsyscall(name: string, retprobe: boolean): NativeLink;
  attachKprobeMulti(pattern: string | null, symbols: string[] | null, retprobe: boolean): NativeLink;
  attachUprobe(binary: string, func: string | null, offset: number, pid: number, retprobe: boolean): NativeLink;
  attachUsdt(binary: string, provider: string, name: string, pid: number, cookie: bigint): NativeLink;
  attachTracepoint(category: string, name: string): NativeLink;
  attachRawTracepoint(name: string): NativeLink;
  attachPerfEvent(perfFd: number): NativeLink;
  attachXdp(ifindex: number, flags: number): NativeLink;
  attachTc(ifindex: number, attachPoint: number, priority: number, handle: number): NativeLink;
  attachLink(targetFd: number, attachType: number, flags: number, ifindex: number, target: string): NativeLink;
  attachCgroup(cgroupFd: number, path: string): NativeLink;
  attachNetns(netnsFd: number, path: string): NativeLink;
  attachProg(targetFd: number, attachType: number, target: string): NativeLink;
  attachIter(mapFd: number): NativeLink;
  attachNetfilter(pf: number, hooknum: number, priority: number, flags: number, target: string): NativeLink;
  testRun(args: NativeTestRunArgs): NativeTestRunResult;
  pin(path: string): void;
  close(): void;
  /** Set by load() when the kernel returned a log (logLevel > 0). */
  verifierLog?: string;
}

export interface NativeLinkInfo {
  kind: 'link' | 'socket' | 'xdp_netlink' | 'tc' | 'prog_attach' | 'usdt' | 'struct_ops';
  ifindex?: number;
  fd: number;
  id?: number;
  type?: number;
  progId?: number;
  /** A struct_ops registration: the map's id. */
  mapId?: number;
  /** A classic tc filter: whether attaching it made the clsact qdisc. */
  hookCreated?: boolean;
}

export interface NativeLink {
  info(): NativeLinkInfo;
  pin(path: string): void;
  unpin(): void;
  update(progFd: number, target: string): void;
  iterFd(): number;
  /** Whether this call undid the attachment (false: already detached, or the kernel no longer had it). */
  detach(): boolean;
}

export interface NativeObjectOptions {
  name?: string;
  btfCustomPath?: string;
  pinRoot?: string;
  kconfig?: string;
  kernelLogLevel?: number;
}

export interface NativeObject {
  name(): string;
  load(): void;
  loadAsync(): Promise<void>;
  maps(): NativeMap[];
  programs(): NativeProgram[];
  btf(): Buffer | null;
  close(): void;
}

export interface NativeRingBuffer extends NativeStream {
  add(mapFd: number): number;
  available(): number[];
}

export interface NativeRingMmap extends NativeStream {
  /** Maps ring `mapFd` of `size` data bytes and watches it. */
  add(mapFd: number, size: number): { consumer: ArrayBuffer; data: ArrayBuffer; pageSize: number };
}

export interface NativeRingThread extends NativeStream {
  add(mapFd: number, size: number): void;
  start(): void;
  available(): number[];
  /** Batches filled in memory an earlier batch's Buffer gave back when collected (tests). */
  reused(): number;
}

export interface NativeUserRingBuffer {
  submit(record: Buffer): void;
  /** Records laid end to end; how many went in before the ring was full. */
  submitBatch(records: Buffer, lengths: Uint32Array): number;
  reserve(size: number): ArrayBuffer;
  /** false: not a buffer reserve() returned (or already committed). */
  commit(sample: ArrayBuffer, discard: boolean): boolean;
  pending(): number;
  close(): void;
}

export interface Addon {
  NativeObject: new (source: string | Buffer, opts: NativeObjectOptions) => NativeObject;
  NativeMap: {
    create(type: number, name: string | null, keySize: number, valueSize: number,
      maxEntries: number, flags: number): NativeMap;
    fromPin(path: string): NativeMap;
    fromId(id: number): NativeMap;
    /**
     * Element operations on a scratch, one function each for all maps:
     * plain functions, no receiver to unwrap, no arguments, no result. The
     * map is the one whose slot (from scratch()) is in the slot word.
     */
    scratchOps(): [slot: ArrayBuffer, lookup: () => void, update: () => void, del: () => void, lookupAndDelete: () => void, nextKey: () => void];
  };
  NativeProgram: {
    load(type: number, insns: Buffer, license: string, name: string | null,
      expectedAttachType: number, logLevel: number): NativeProgram;
    fromPin(path: string): NativeProgram;
    fromId(id: number): NativeProgram;
  };
  NativeLink: {
    fromPin(path: string): NativeLink;
  };
  NativeRingBuffer: new (mapFd: number, onBatch: OnBatch, budgetRecords: number, budgetBytes: number) => NativeRingBuffer;
  NativeRingMmap: new (onWake: OnBatch) => NativeRingMmap;
  NativeRingThread: new (onBatch: OnBatch, queueBytes: number, batchSize: number, batchBytes: number) => NativeRingThread;
  NativeUserRingBuffer: new (mapFd: number, name: string) => NativeUserRingBuffer;
  NativePerfBuffer: new (mapFd: number, pageCount: number, onBatch: OnBatch) => NativeStream;
  setup(hooks: { makeError: (info: FailureInfo) => Error }): void;
  numPossibleCpus(): number;
  openRawSocket(ifname: string): number;
  ifNameToIndex(ifname: string): number;
  perfEventOpen(type: number, config: number | bigint, sample: number, isFreq: boolean, pid: number, cpu: number): number;
  tcFilterCount(ifindex: number): number;
  tcHookDestroy(ifindex: number): void;
  /** libbpf's probes: 1 yes, 0 no, < 0 -errno of a probe that could not run. */
  probeType(kind: 'prog' | 'map', type: number): number;
  probeType(kind: 'helper', progType: number, helperId: number): number;
  /** A real attempt: null when the kernel did it, else the errno and the call that failed. */
  probeFeature(name: string, arg?: string): { errno: number; op: string } | null;
  mapTypes: Record<string, number>;
  progTypes: Record<string, number>;
  attachTypes: Record<string, number>;
  linkTypes: Record<string, number>;
  libbpfVersion: string;
}

/** What the user must do when the addon cannot be loaded, by the loader's reason. */
export function loadFailureAdvice(reason: string): string {
  if (/libbpf\.so\.\d+: cannot open shared object file/.test(reason)) {
    return 'the system libbpf (1.0 or newer) is not installed. Install its runtime package:\n' +
      '    apt-get install libbpf1      # Debian 12+, Ubuntu 23.04+\n' +
      '    dnf install libbpf           # Fedora, RHEL 9\n' +
      '    pacman -S libbpf             # Arch';
  }
  if (/version `LIBBPF_[\d.]+' not found/.test(reason)) {
    return 'the system libbpf is older than 1.0, which this addon needs (Debian 12, Ubuntu 23.04 and Fedora 37 have 1.x).\n' +
      'Install a newer libbpf1, or build libbpf 1.x and rebuild: npm rebuild libbpf-node';
  }
  if (/version `(GLIBC|GLIBCXX|CXXABI)_[\d.]+' not found/.test(reason)) {
    return 'the prebuilt addon needs glibc 2.32 and libstdc++ from GCC 11 or newer. Build it here instead:\n' +
      '    apt-get install libbpf-dev libelf-dev zlib1g-dev pkg-config g++ make python3 && npm rebuild libbpf-node';
  }
  return 'Possible solutions:\n' +
    '- install the system libbpf and a compiler, then rebuild:\n' +
    '    apt-get install libbpf-dev libelf-dev zlib1g-dev pkg-config g++ make python3 && npm rebuild libbpf-node\n' +
    '- on a distribution without libbpf 1.x packages, build libbpf 1.1 or newer and make pkg-config find it';
}

function load(): Addon {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => unknown;
  const root = path.join(__dirname, '..', '..', '..');
  try {
    return nodeGypBuild(root) as Addon;
  } catch (e) {
    const reason = (e as Error).message;
    const err = new Error(`libbpf-node: the native addon could not be loaded: ${reason}\n${loadFailureAdvice(reason)}`, { cause: e });
    // A code to test for, as Node's own loader errors have (ERR_DLOPEN_FAILED).
    (err as NodeJS.ErrnoException).code = 'ERR_LIBBPF_NODE_LOAD';
    throw err;
  }
}

export const addon: Addon = load();
addon.setup({ makeError });

let possibleCpus: number | undefined;
/** The number of possible CPUs: the per-CPU maps' slot count. */
export function numPossibleCpus(): number {
  possibleCpus ??= addon.numPossibleCpus();
  return possibleCpus;
}
