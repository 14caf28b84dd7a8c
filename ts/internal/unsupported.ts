// Failures explained by the feature probes: when a call fails and the probe
// of the feature it needs says the kernel lacks it, the BpfError says so
// (`unsupported`, and the probe's reason in its message).
import { BpfError } from '../errors.js';
import { features, type FeatureResult } from '../features.js';
import type { ProgramType } from '../types.js';

/** `e`, or the same failure naming `feature` when `probe` says the kernel lacks it. */
export function explain(e: unknown, feature: string, probe: () => FeatureResult, program?: string): unknown {
  if (!(e instanceof BpfError) || e.unsupported !== undefined) return e;
  const r = probe();
  return r === true ? e : e.becauseUnsupported(feature, r, program ?? e.program);
}

/** Runs `fn`; a BpfError it throws is explained by `feature`'s probe. */
export function needing<T>(feature: string, probe: () => FeatureResult, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw explain(e, feature, probe);
  }
}

/** What a program of this section and type needs of the kernel to load. */
export function programFeature(section: string, type: ProgramType): [string, () => FeatureResult] {
  const [kind = '', target = ''] = section.replace(/^([a-z_.]+?)(\.s)?(\/|$)/, '$1$3').split('/');
  if (['fentry', 'fexit', 'fmod_ret'].includes(kind)) return ['trampolines', features.trampolines];
  if (kind === 'lsm') return ['lsm', features.lsm];
  // libbpf before 1.2 cannot probe program types newer than itself: a real load can.
  if (kind === 'netfilter') return ['netfilter', features.netfilter];
  if (kind === 'iter' && target !== '') return [`iterator:${target}`, () => features.iterator(target)];
  return [`programType:${type}`, () => features.programType(type)];
}

// Sections whose hook is what the kernel may lack at attach time.
const ATTACH_HOOKS: Record<string, [string, () => FeatureResult]> = {
  kprobe: ['kprobes', features.kprobes],
  kretprobe: ['kprobes', features.kprobes],
  ksyscall: ['kprobes', features.kprobes],
  kretsyscall: ['kprobes', features.kprobes],
  'kprobe.multi': ['kprobeMulti', features.kprobeMulti],
  'kretprobe.multi': ['kprobeMulti', features.kprobeMulti],
  'uprobe.multi': ['uprobeMulti', features.uprobeMulti],
  'uretprobe.multi': ['uprobeMulti', features.uprobeMulti],
  usdt: ['bpfCookie', features.bpfCookie],
  tcx: ['tcx', features.tcx],
};

/** What attaching a program by its section needs of the kernel. */
export function attachFeature(section: string, type: ProgramType): [string, () => FeatureResult] {
  const kind = section.split('/')[0] ?? '';
  return ATTACH_HOOKS[kind.replace(/\.s$/, '')] ?? programFeature(section, type);
}

/** What an object's failed load lacked, from what libbpf printed and the verifier said. */
export interface LoadParts {
  programs: ReadonlyMap<string, { section: string; type: ProgramType }>;
  maps: ReadonlyMap<string, { type: string }>;
}

export function explainLoad(e: unknown, parts: LoadParts): unknown {
  if (!(e instanceof BpfError) || e.unsupported !== undefined) return e;
  const text = `${e.log}\n${(e as { verifierLog?: string }).verifierLog ?? ''}`;
  // A helper the verifier does not know: "unknown func bpf_loop#181".
  const helper = /unknown func (?:bpf_)?(\w+)#\d+/.exec(text)?.[1];
  // The program whose load failed (not one of the debug lines about the others).
  const progName = e.program ?? /prog '([^']+)': (?:BPF program load failed|failed to load)/.exec(e.log)?.[1];
  const prog = progName === undefined ? undefined : parts.programs.get(progName);
  if (helper !== undefined && prog !== undefined) {
    const explained = explain(e, `helper:bpf_${helper}`, () => tryProbe(() => features.helper(prog.type, helper)), progName);
    if (explained !== e) return explained;
  }
  if (prog !== undefined) {
    const [feature, probe] = programFeature(prog.section, prog.type);
    return explain(e, feature, probe, progName);
  }
  // A map the kernel would not create: "map 'events': failed to create"
  // (libbpf 1.2+) or "Error in bpf_create_map_xattr(events)" (1.1).
  const mapName = /map '([^']+)'|bpf_create_map_xattr\(([^)]+)\)/.exec(e.log);
  const map = mapName === null ? undefined : parts.maps.get(mapName[1] ?? mapName[2] ?? '');
  if (map !== undefined) {
    const type = map.type as Parameters<typeof features.mapType>[0];
    return explain(e, `mapType:${type}`, () => tryProbe(() => features.mapType(type)));
  }
  return e;
}

// A probe that cannot name what it was asked about (a helper newer than this
// library) explains nothing.
function tryProbe(probe: () => FeatureResult): FeatureResult {
  try {
    return probe();
  } catch {
    return true;
  }
}
