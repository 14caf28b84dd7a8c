// Introspection: what the kernel says of a program, map or link
// (bpf_obj_get_info_by_fd), and run-time statistics (bpf_enable_stats).
// The classes' info() methods call into here with their fd; the kernel-wide
// walks (BpfProgram.list(), ...) live with each class.
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { addon } from './internal/addon.js';
import { checkInt, checkString, invalidArgType, invalidArgValue } from './internal/errors.js';
import { ATTACH_TYPES, MAP_TYPES, PROG_TYPES, typeName, type AttachType, type MapType, type ProgramType } from './types.js';

/**
 * What the kernel says of a loaded program (`struct bpf_prog_info`). Fields
 * a kernel is too old to report are undefined: `verifiedInsns` needs 5.16,
 * `recursionMisses` 5.12.
 */
export interface ProgramInfo {
  /** The kernel's program id (what bpftool prog shows). */
  readonly id: number;
  /** BPF_PROG_TYPE_* by libbpf's name, as BpfProgram#type. */
  readonly type: ProgramType;
  /** The kernel's name (prog_name, at most 15 bytes). */
  readonly name: string;
  /** The 8-byte program tag (a hash of the instructions), in hex as bpftool prints it. */
  readonly tag: string;
  /** When it was loaded: `loadTimeNs` after boot, converted to wall-clock time (ms precision). */
  readonly loadTime: Date;
  /** When it was loaded, in ns since boot (CLOCK_BOOTTIME), as the kernel keeps it. */
  readonly loadTimeNs: bigint;
  /** The uid of the process that loaded it. */
  readonly uid: number;
  /** The ids of the maps the program uses. */
  readonly mapIds: readonly number[];
  /** The id of the program's BTF object (0: none). */
  readonly btfId: number;
  /** Bytes of JITed machine code (0 without the JIT). */
  readonly jitedSize: number;
  /** Bytes of instructions after the verifier's rewrites (8 per slot). */
  readonly xlatedSize: number;
  /** Instructions the verifier processed (5.16+). */
  readonly verifiedInsns: number | undefined;
  /** Total ns spent running it while statistics were on (see enableStats()). */
  readonly runTimeNs: bigint;
  /** Times it ran while statistics were on (see enableStats()). */
  readonly runCount: bigint;
  /** Runs skipped because the program was already running on that CPU (5.12+). */
  readonly recursionMisses: bigint | undefined;
  /** Whether its license is GPL-compatible. */
  readonly gplCompatible: boolean;
  /** The device an offloaded program is bound to (0: none). */
  readonly ifindex: number;
  /** The BTF type id of the function a tracing program attaches to (0: none). */
  readonly attachBtfId: number | undefined;
  /** The id of the BTF object (vmlinux or a module) that type is in. */
  readonly attachBtfObjId: number | undefined;
}

/** What the kernel says of a map (`struct bpf_map_info`). */
export interface MapInfo {
  readonly id: number;
  /** BPF_MAP_TYPE_* by libbpf's name, as BpfMap#type. */
  readonly type: MapType;
  readonly name: string;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  /** BPF_F_* creation flags. */
  readonly flags: number;
  /** The device an offloaded map is bound to (0: none). */
  readonly ifindex: number;
  /** The id of the map's BTF object (0: none). */
  readonly btfId: number;
  readonly btfKeyTypeId: number;
  readonly btfValueTypeId: number;
  /** map_extra (a bloom filter's number of hash functions), 5.16+. */
  readonly mapExtra: bigint | undefined;
}

/**
 * What the kernel says of a link (`struct bpf_link_info`): the common part,
 * and the fields of its type that the running kernel reports. Types and
 * fields the kernel is too old for are absent.
 */
export interface LinkInfo {
  readonly id: number;
  /** BPF_LINK_TYPE_* by name: 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event', 'tcx', ... */
  readonly type: string;
  /** The id of the program it runs. */
  readonly progId: number;
  /** The attach type, for the link types that report one (tracing, cgroup, netns, tcx, netkit, sockmap). */
  readonly attachType?: AttachType;
  /** raw_tracepoint: the tracepoint; perf_event: the tracepoint, kprobe function or uprobe file; iter: the target. */
  readonly target?: string;
  /** perf_event: 'uprobe' | 'uretprobe' | 'kprobe' | 'kretprobe' | 'tracepoint' | 'event'. */
  readonly perfEventType?: string;
  /** cgroup links: the cgroup's id (its inode number). */
  readonly cgroupId?: bigint;
  /** netns links: the network namespace's inode number. */
  readonly netnsIno?: number;
  /** xdp, tcx, netkit links: the interface. 0 once the link is detached. */
  readonly ifindex?: number;
  /** tracing links: the BTF object id (a program id for freplace) and the BTF type id of the target. */
  readonly targetObjId?: number;
  readonly targetBtfId?: number;
  /** iter links over a map; struct_ops and sockmap links: the map. */
  readonly mapId?: number;
  /** netfilter links. */
  readonly netfilter?: { readonly pf: number; readonly hooknum: number; readonly priority: number; readonly flags: number };
  /** kprobe_multi and uprobe_multi links: how many functions/offsets. */
  readonly count?: number;
  /** The kprobe or uprobe's offset, or a kprobe's address (perf_event). */
  readonly offset?: number;
  readonly addr?: bigint;
  /** The BPF cookie (perf_event links, 6.7+). */
  readonly cookie?: bigint;
}

interface NativeProgInfo {
  type: number; id: number; tag: string; jitedSize: number; xlatedSize: number; loadTime: bigint;
  realtimeMinusBoottime: bigint; uid: number; mapIds: number[]; name: string; ifindex: number; gplCompatible: boolean;
  btfId?: number; runTimeNs?: bigint; runCount?: bigint; recursionMisses?: bigint; verifiedInsns?: number;
  attachBtfObjId?: number; attachBtfId?: number;
}

interface NativeMapInfoRaw {
  type: number; id: number; keySize: number; valueSize: number; maxEntries: number; flags: number; name: string;
  ifindex: number; btfId?: number; btfKeyTypeId?: number; btfValueTypeId?: number; mapExtra?: bigint;
}

/** @internal The addon's introspection calls (native/info.cc). */
export interface NativeIntrospection {
  progInfo(fd: number): NativeProgInfo;
  progInsns(fd: number, jited: boolean): Buffer;
  mapInfo(fd: number): NativeMapInfoRaw;
  linkInfo(fd: number): { raw: Buffer; name?: string };
  enableStats(): number;
  closeFd(fd: number): void;
  nextId(kind: 'prog' | 'map' | 'link' | 'btf', start: number): number;
  linkFromId(id: number, skipMissing: boolean): unknown;
  linkDetach(fd: number, target: string): void;
  progQuery(target: number, attachType: number, what: string): { attachFlags: number; progIds: number[]; progAttachFlags: number[] };
  xdpQuery(ifindex: number): { mode: number; progId: number; drvProgId: number; skbProgId: number; hwProgId: number };
  tcQuery(ifindex: number, parent: number): {
    kind: string; handle: number; priority: number; protocol: number; progId: number; name: string; flags: number; flagsGen: number;
  }[];
  clockOffset(): bigint;
}

/** @internal */
export const native = addon as unknown as NativeIntrospection;

/** @internal bpf_prog_info of a program fd, typed. */
export function programInfo(fd: number): ProgramInfo {
  const n = native.progInfo(fd);
  const wall = n.loadTime + n.realtimeMinusBoottime;
  return Object.freeze({
    id: n.id,
    type: typeName(PROG_TYPES, n.type),
    name: n.name,
    tag: n.tag,
    loadTime: new Date(Number(wall / 1_000_000n)),
    loadTimeNs: n.loadTime,
    uid: n.uid,
    mapIds: Object.freeze(n.mapIds),
    btfId: n.btfId ?? 0,
    jitedSize: n.jitedSize,
    xlatedSize: n.xlatedSize,
    verifiedInsns: n.verifiedInsns,
    runTimeNs: n.runTimeNs ?? 0n,
    runCount: n.runCount ?? 0n,
    recursionMisses: n.recursionMisses,
    gplCompatible: n.gplCompatible,
    ifindex: n.ifindex,
    attachBtfId: n.attachBtfId,
    attachBtfObjId: n.attachBtfObjId,
  });
}

/** @internal bpf_map_info of a map fd, typed. */
export function mapInfo(fd: number): MapInfo {
  const n = native.mapInfo(fd);
  return Object.freeze({
    id: n.id,
    type: typeName(MAP_TYPES, n.type),
    name: n.name,
    keySize: n.keySize,
    valueSize: n.valueSize,
    maxEntries: n.maxEntries,
    flags: n.flags,
    ifindex: n.ifindex,
    btfId: n.btfId ?? 0,
    btfKeyTypeId: n.btfKeyTypeId ?? 0,
    btfValueTypeId: n.btfValueTypeId ?? 0,
    mapExtra: n.mapExtra,
  });
}

const LINK_TYPE_NAMES = [
  'unspec', 'raw_tracepoint', 'tracing', 'cgroup', 'iter', 'netns', 'xdp', 'perf_event',
  'kprobe_multi', 'struct_ops', 'netfilter', 'tcx', 'uprobe_multi', 'netkit', 'sockmap',
] as const;
const PERF_EVENT_TYPES = ['unspec', 'uprobe', 'uretprobe', 'kprobe', 'kretprobe', 'tracepoint', 'event'] as const;

/**
 * @internal bpf_link_info of a link fd. The per-type union is decoded here
 * from the uapi offsets (linux/bpf.h), which the kernel keeps stable, so
 * types newer than the libbpf headers the addon was built with still decode.
 * A field is read only where the kernel wrote it (the returned length).
 */
export function linkInfo(fd: number): LinkInfo {
  const { raw, name } = native.linkInfo(fd);
  const U = 16; // the union's offset
  const has = (off: number, size: number): boolean => U + off + size <= raw.length;
  const u32 = (off: number): number | undefined => (has(off, 4) ? raw.readUInt32LE(U + off) : undefined);
  const s32 = (off: number): number | undefined => (has(off, 4) ? raw.readInt32LE(U + off) : undefined);
  const u64 = (off: number): bigint | undefined => (has(off, 8) ? raw.readBigUInt64LE(U + off) : undefined);
  const attach = (v: number | undefined): AttachType | undefined => (v === undefined ? undefined : typeName(ATTACH_TYPES, v));
  const typeNum = raw.readUInt32LE(0);
  const type = typeName(LINK_TYPE_NAMES, typeNum);
  const out: { -readonly [K in keyof LinkInfo]: LinkInfo[K] } = { id: raw.readUInt32LE(4), type, progId: raw.readUInt32LE(8) };
  const set = <K extends keyof LinkInfo>(k: K, v: LinkInfo[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  switch (type) {
    case 'raw_tracepoint':
      set('target', name);
      break;
    case 'tracing':
      set('attachType', attach(u32(0)));
      set('targetObjId', u32(4));
      set('targetBtfId', u32(8));
      break;
    case 'cgroup':
      set('cgroupId', u64(0));
      set('attachType', attach(u32(8)));
      break;
    case 'iter':
      set('target', name);
      if (name?.startsWith('bpf_map')) set('mapId', u32(12));
      break;
    case 'netns':
      set('netnsIno', u32(0));
      set('attachType', attach(u32(4)));
      break;
    case 'xdp':
      set('ifindex', u32(0));
      break;
    case 'perf_event': {
      // 0: a kernel (5.15 to 6.5) with perf_event links that does not describe them
      const pt = u32(0);
      if (pt !== undefined && pt !== 0) set('perfEventType', typeName(PERF_EVENT_TYPES, pt));
      set('target', name);
      if (pt === 1 || pt === 2) { // uprobe: file_name, name_len, offset, cookie
        set('offset', u32(20));
        set('cookie', u64(24));
      } else if (pt === 3 || pt === 4) { // kprobe: func_name, name_len, offset, addr, missed, cookie
        set('offset', u32(20));
        set('addr', u64(24));
        set('cookie', u64(40));
      } else if (pt === 5) { // tracepoint: tp_name, name_len, pad, cookie
        set('cookie', u64(24));
      } else if (pt === 6) { // event: config, type, pad, cookie
        set('cookie', u64(24));
      }
      break;
    }
    case 'kprobe_multi':
      set('count', u32(8));
      break;
    case 'struct_ops':
      set('mapId', u32(0));
      break;
    case 'netfilter': {
      const pf = u32(0), hooknum = u32(4), priority = s32(8), flags = u32(12);
      if (pf !== undefined && hooknum !== undefined && priority !== undefined && flags !== undefined) {
        out.netfilter = Object.freeze({ pf, hooknum, priority, flags });
      }
      break;
    }
    case 'uprobe_multi':
      set('target', name);
      set('count', u32(36));
      break;
    case 'tcx':
    case 'netkit':
      set('ifindex', u32(0));
      set('attachType', attach(u32(4)));
      break;
    case 'sockmap':
      set('mapId', u32(0));
      set('attachType', attach(u32(4)));
      break;
    default:
      break;
  }
  return Object.freeze(out);
}

// Handles are fds; one the user lets go of without close() is closed by
// the GC (the held value is the fd number, unregistered on close()).
const stats = new FinalizationRegistry<number>((fd) => native.closeFd(fd));

/**
 * Run-time statistics, on while this handle is open (bpf_enable_stats with
 * BPF_STATS_RUN_TIME): the kernel then counts every program's runs and the
 * time they take (ProgramInfo#runCount, #runTimeNs). Stats stay on while any
 * process holds such a handle; counting costs a little on every run.
 */
export class StatsHandle {
  #fd: number;

  /** @internal Made by enableStats(). */
  constructor(fd: number) {
    this.#fd = fd;
    stats.register(this, fd, this);
  }

  /** False once closed. */
  get enabled(): boolean { return this.#fd >= 0; }

  /** Closes the handle: stats stop unless someone else holds one. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    stats.unregister(this);
    native.closeFd(this.#fd);
    this.#fd = -1;
  }

  /** close(), for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Turns on the kernel's run-time statistics of every BPF program
 * (bpf_enable_stats(BPF_STATS_RUN_TIME)) until the returned handle is closed
 * (5.8+). Throws BpfError (op 'bpf_enable_stats').
 *
 * @example
 * ```ts
 * using stats = enableStats();
 * prog.testRun({ data, repeat: 10 });
 * prog.info().runCount; // 10n more than before
 * ```
 */
export function enableStats(): StatsHandle {
  return new StatsHandle(native.enableStats());
}


/** Where queryPrograms() looks: a cgroup (directory), a network namespace, or an interface (tcx). */
export type QueryTarget =
  | { readonly cgroup: string }
  | { readonly netns?: string }
  | { readonly ifname: string }
  | { readonly ifindex: number };

/** What queryPrograms() found. */
export interface QueryResult {
  /** The programs attached, in the order they run. */
  readonly programIds: readonly number[];
  /** The hook's attach flags (BPF_F_ALLOW_OVERRIDE 1, BPF_F_ALLOW_MULTI 2; cgroups). */
  readonly attachFlags: number;
  /** Per program, where the kernel reports them (6.0+; 0 before). */
  readonly programAttachFlags: readonly number[];
}

function ifindexOf(name: string, v: unknown): number {
  if (typeof v === 'number') return checkInt(name, v, 1, 0x7fff_ffff);
  const ifname = checkString(name, v);
  try {
    return addon.ifNameToIndex(ifname);
  } catch (e) {
    return invalidArgValue(name, ifname, `is no interface here (${(e as Error).message})`);
  }
}

/**
 * The programs attached to a hook (BPF_PROG_QUERY, bpf_prog_query_opts):
 * what `bpftool cgroup show`, `bpftool net` list, whoever attached them.
 * `attachType` names the hook: 'cgroup_inet_egress' on a cgroup,
 * 'sk_lookup' or 'flow_dissector' on a network namespace (default this
 * process's), 'tcx_ingress'/'tcx_egress' on an interface (6.6+).
 * Kernel refusals are BpfError (op 'bpf_prog_query_opts').
 *
 * @example
 * ```ts
 * queryPrograms({ cgroup: '/sys/fs/cgroup/app' }, 'cgroup_inet_egress').programIds; // [42]
 * ```
 */
export function queryPrograms(target: QueryTarget, attachType: AttachType): QueryResult {
  if (target === null || typeof target !== 'object') invalidArgType('target', 'an object', target);
  const type = ATTACH_TYPES.indexOf(attachType);
  if (type < 0) invalidArgValue('attachType', attachType, 'is not an attach type');
  let r: ReturnType<NativeIntrospection['progQuery']>;
  if ('ifname' in target || 'ifindex' in target) {
    const ifindex = 'ifindex' in target ? ifindexOf('target.ifindex', target.ifindex) : ifindexOf('target.ifname', target.ifname);
    r = native.progQuery(ifindex, type, `${attachType} of ifindex ${ifindex}`);
  } else {
    const p = 'cgroup' in target ? checkString('target.cgroup', target.cgroup)
      : target.netns === undefined ? '/proc/self/ns/net' : checkString('target.netns', target.netns);
    let fd: number;
    try {
      fd = openSync(p, fsConstants.O_RDONLY | ('cgroup' in target ? fsConstants.O_DIRECTORY : 0));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return invalidArgValue('cgroup' in target ? 'target.cgroup' : 'target.netns', p, `cannot be opened (${err.code ?? err.message})`);
    }
    try {
      r = native.progQuery(fd, type, `${attachType} of ${p}`);
    } finally {
      closeSync(fd);
    }
  }
  return Object.freeze({
    programIds: Object.freeze(r.progIds),
    attachFlags: r.attachFlags,
    programAttachFlags: Object.freeze(r.progAttachFlags),
  });
}

/** The XDP programs of an interface, by mode (0: none), as `ip link` and `bpftool net` show them. */
export interface XdpQueryResult {
  /** XDP_ATTACHED_*: 'none', 'drv' (native), 'skb' (generic), 'hw' (offload), or 'multi'. */
  readonly mode: 'none' | 'drv' | 'skb' | 'hw' | 'multi';
  /** The program of the single mode attached (0: none, or several modes). */
  readonly programId: number;
  readonly drvProgramId: number;
  readonly skbProgramId: number;
  readonly hwProgramId: number;
}

const XDP_MODES = ['none', 'drv', 'skb', 'hw', 'multi'] as const;

/** The XDP programs attached to an interface (bpf_xdp_query, netlink). BpfError (op 'bpf_xdp_query') on failure. */
export function queryXdp(iface: string | number): XdpQueryResult {
  const ifindex = ifindexOf('iface', iface);
  const r = native.xdpQuery(ifindex);
  return Object.freeze({
    mode: XDP_MODES[r.mode] ?? 'none',
    programId: r.progId,
    drvProgramId: r.drvProgId,
    skbProgramId: r.skbProgId,
    hwProgramId: r.hwProgId,
  });
}

/** A classic tc BPF filter (cls_bpf) on an interface's clsact qdisc, as `tc filter show` and `bpftool net` list it. */
export interface TcFilter {
  /** The clsact hook it hangs on. */
  readonly attachPoint: 'ingress' | 'egress';
  /** The filter's handle (`tc filter ... handle`). */
  readonly handle: number;
  /** Its priority (`pref`); lower runs first. */
  readonly priority: number;
  /** The ETH_P_* protocol it matches, host order (0x0003: ETH_P_ALL, 'protocol all'). */
  readonly protocol: number;
  /** The id of the program it runs. */
  readonly programId: number;
  /** The filter's name (TCA_BPF_NAME): `prog:[id]` when libbpf (attachTc()) made it, `file:[section]` when tc did. */
  readonly name: string;
  /** Whether it runs in direct-action mode (TCA_BPF_FLAG_ACT_DIRECT, `tc ... da`). */
  readonly directAction: boolean;
}

// TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS / TC_H_MIN_EGRESS), as unsigned 32-bit.
const CLSACT_PARENTS = [['ingress', 0xffff_fff2], ['egress', 0xffff_fff3]] as const;
const TCA_BPF_FLAG_ACT_DIRECT = 1;

/**
 * The classic tc BPF filters of an interface (ingress, then egress, in the
 * kernel's order: by priority), through an RTM_GETTFILTER dump over
 * rtnetlink: libbpf can only look up one filter by handle and priority.
 * Filters of other classifiers (u32, flower, ...) and tcx links are not
 * listed (tcx: queryPrograms({ ifname }, 'tcx_ingress')). An interface
 * without a clsact qdisc has none: []. A missing interface index is a
 * BpfError ENODEV (op 'if_indextoname'); a name that is no interface, a
 * RangeError/TypeError as for queryXdp(). Looks in this process's network
 * namespace.
 *
 * @example
 * ```ts
 * queryTc('eth0'); // [{ attachPoint: 'ingress', handle: 1, priority: 1, protocol: 3, programId: 42, name: 'tc_filter', directAction: true }]
 * ```
 */
export function queryTc(iface: string | number): TcFilter[] {
  const ifindex = ifindexOf('iface', iface);
  const out: TcFilter[] = [];
  for (const [attachPoint, parent] of CLSACT_PARENTS) {
    let filters: ReturnType<NativeIntrospection['tcQuery']>;
    try {
      filters = native.tcQuery(ifindex, parent);
    } catch (e) {
      // No clsact qdisc (or a plain ingress qdisc, for egress): the
      // kernel refuses the dump instead of returning nothing.
      const code = (e as { code?: unknown }).code;
      if (e instanceof Error && (e as { op?: unknown }).op === 'RTM_GETTFILTER' && (code === 'EINVAL' || code === 'ENOENT')) continue;
      throw e;
    }
    for (const f of filters) {
      if (f.kind !== 'bpf') continue;
      out.push(Object.freeze({
        attachPoint,
        handle: f.handle,
        priority: f.priority,
        protocol: f.protocol,
        programId: f.progId,
        name: f.name,
        directAction: (f.flags & TCA_BPF_FLAG_ACT_DIRECT) !== 0,
      }));
    }
  }
  return out;
}
