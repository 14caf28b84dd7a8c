// What the stack tools (profile.ts, offcputime.ts) share: reading the
// counts and stack trace maps their BPF programs fill (bpf/profile.h),
// symbolizing the addresses, and writing the result as Brendan Gregg's
// folded stacks, as a pprof profile (pprof-format's encoder) or as a
// self-contained flame graph page (d3-flame-graph and its d3 modules,
// inlined from node_modules at run time: the page needs no network).
//
// This file is part of the examples, not of the library: pprof-format and
// d3-flame-graph are development dependencies of this repository; a copy of
// the tools needs them installed next to it.
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { Function as PprofFunction, Label, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import { intArg, UsageError, type ParsedTool } from './tool.js';
import { Symbolizer, type BpfMap, type BpfObject, type Frame, type Symbolizer as SymbolizerShape } from '../ts/index.js';

/** The key of the counts map (struct stack_key in bpf/profile.h), as the map decodes it from BTF. */
export interface StackKey {
  pid: number;
  tgid: number;
  kstack: number;
  ustack: number;
  comm: string;
}

/**
 * Where the symbolizers come from: the library's Symbolizer by default
 * (kallsyms; a process's ELF files and JIT perf map). Tests or other tools
 * may pass their own factories.
 */
export interface SymbolSource {
  kernel(): SymbolizerShape;
  /** Throws (ESRCH) when the process is gone: its frames stay [unknown]. */
  process(tgid: number): SymbolizerShape;
}

/** One distinct stack: frames from the root (`comm-tgid`) to the leaf, and its total. */
export interface Stack {
  frames: string[];
  value: bigint;
  tgid: number;
  comm: string;
}

// -EFAULT from bpf_get_stackid: there was no such stack (a kernel thread's
// user stack, a sample taken in user mode's kernel stack). Any other
// negative id is a stack the BPF side could not keep (map full: -EEXIST,
// -ENOMEM), which the output shows rather than hides.
const EFAULT = 14;
/** Kernel frames carry this suffix, as stackcollapse-perf.pl --kernel writes them (flame graphs color them apart). */
export const KERNEL_SUFFIX = '_[k]';

// The leaf frames of a kernel stack taken from a tracepoint (tp_btf,
// raw_tp): the BPF program, bpf_trace_run<N>, the tracepoint's iterator.
const TRACING_GLUE = /^(bpf_prog_[0-9a-f]+_\w+|bpf_trace_run\d+|__traceiter_\w+|__bpf_trace_\w+|trace_call_bpf|perf_trace_\w+)$/;

/** The addresses of one stack in the stack trace map, leaf first (the map's own order). */
export function stackAddresses(stacks: BpfMap, id: number): bigint[] {
  // Stack trace maps decode to bigint[], trimmed at the first 0.
  return (stacks as BpfMap<number, bigint[]>).lookup(id) ?? [];
}

// Folded stacks use ';' between frames and a space before the count: a
// frame keeps its spaces (V8 names have them), loses its semicolons.
const clean = (name: string): string => name.replace(/;/g, ':').replace(/[\r\n]/g, ' ');

/**
 * Reads an object's `counts` and `stacks` maps (struct stack_key → u64) and
 * symbolizes every stack: one Stack per distinct frame list, summed (two
 * threads or two addresses in one function give the same frames).
 */
export function readStacks(obj: BpfObject, syms: SymbolSource = Symbolizer, opts: { kernelOnly?: boolean; userOnly?: boolean } = {}): Stack[] {
  const counts = obj.map<StackKey, bigint>('counts');
  const stacks = obj.map('stacks');
  const kernel = syms.kernel();
  const procs = new Map<number, SymbolizerShape | undefined>();
  const proc = (tgid: number): SymbolizerShape | undefined => {
    if (!procs.has(tgid)) {
      let r: SymbolizerShape | undefined;
      try {
        r = syms.process(tgid);
      } catch {
        r = undefined; // exited before the end: its frames stay [unknown]
      }
      procs.set(tgid, r);
    }
    return procs.get(tgid);
  };
  const frameCache = new Map<string, string[]>();
  const frames = (id: number, user: boolean, tgid: number): string[] => {
    if (id < 0) {
      if (-id === EFAULT) return [];
      return [user ? '[missed user stack]' : '[missed kernel stack]'];
    }
    const cacheKey = user ? `${tgid}/u${id}` : `k${id}`;
    let names = frameCache.get(cacheKey);
    if (!names) {
      const r = user ? proc(tgid) : kernel;
      const addrs = stackAddresses(stacks, id);
      // The first address is where the CPU was, the others return addresses:
      // resolveStack() looks those up inside their call instruction.
      const resolved: (Frame | undefined)[] = r ? r.resolveStack(addrs) : addrs.map(() => undefined);
      // A stack taken in a tracepoint program starts in the program and the
      // tracing glue that called it: not where the task was, so dropped.
      let skip = 0;
      if (!user) while (skip < resolved.length && TRACING_GLUE.test(resolved[skip]?.name ?? '')) skip++;
      names = resolved.slice(skip).reverse().map((f) => {
        const name = f?.name !== undefined ? clean(f.name) : '[unknown]';
        return user ? name : name + KERNEL_SUFFIX;
      });
      frameCache.set(cacheKey, names);
    }
    return names;
  };
  const merged = new Map<string, Stack>();
  try {
    for (const [key, value] of counts.entries()) {
      const root = `${clean(key.comm)}-${key.tgid}`;
      const f = [root];
      if (!opts.kernelOnly) f.push(...frames(key.ustack, true, key.tgid));
      if (!opts.userOnly) f.push(...frames(key.kstack, false, key.tgid));
      const line = f.join(';');
      const prev = merged.get(line);
      if (prev) prev.value += value;
      else merged.set(line, { frames: f, value, tgid: key.tgid, comm: key.comm });
    }
  } finally {
    for (const r of procs.values()) r?.close();
    kernel.close();
  }
  return [...merged.values()].sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
}

/** The options profile and offcputime share, with bcc's names and letters. */
export const STACK_OPTIONS = {
  pid: { type: 'string', short: 'p' },
  folded: { type: 'boolean', short: 'f' },
  pprof: { type: 'string' },
  html: { type: 'string' },
  'user-stacks-only': { type: 'boolean', short: 'U' },
  'kernel-stacks-only': { type: 'boolean', short: 'K' },
  'stack-storage-size': { type: 'string' },
} as const;

/** --help lines of STACK_OPTIONS: `verb` the pid filter ('profile'), `value` what a folded line ends with ('count'). */
export function stackOptionHelp(verb: string, value: string, pprofValue = ''): Record<keyof typeof STACK_OPTIONS, string> {
  return {
    pid: `${verb} this process only (all its threads)`,
    folded: `print folded stacks (root;...;leaf ${value}), for flamegraph.pl`,
    pprof: `write a gzipped pprof profile${pprofValue} to this file`,
    html: 'write a self-contained flame graph page to this file',
    'user-stacks-only': 'show user stacks only (no kernel frames)',
    'kernel-stacks-only': 'show kernel stacks only (no user frames)',
    'stack-storage-size': 'how many distinct stacks the stack map keeps (default 4096)',
  };
}

/** STACK_OPTIONS' values as parseTool gives them. */
export type StackOptionValues = ParsedTool<typeof STACK_OPTIONS>['values'];

/** STACK_OPTIONS checked: a live pid (0: all), the stack map's size, which stacks; output files writable. */
export function stackArgs(values: StackOptionValues): { pid: number; storage: number; userOnly: boolean; kernelOnly: boolean } {
  const pid = intArg('--pid', values.pid, 0, 1, 0x7fff_ffff);
  const storage = intArg('--stack-storage-size', values['stack-storage-size'], 4096, 1, 1 << 20);
  const userOnly = values['user-stacks-only'] === true;
  const kernelOnly = values['kernel-stacks-only'] === true;
  if (userOnly && kernelOnly) throw new UsageError('--user-stacks-only and --kernel-stacks-only exclude each other');
  checkTargets(pid, [values.pprof, values.html]);
  return { pid, storage, userOnly, kernelOnly };
}

/**
 * Writes what the options asked for: folded stacks or the text report on
 * stdout, the pprof profile, the flame graph page. Values are divided by
 * `divisor` for the text forms (offcputime: nanoseconds shown as us).
 */
export function writeStacks(stacks: readonly Stack[], values: StackOptionValues, how: {
  divisor: bigint; textUnit: string; htmlUnit: string; pprof: PprofOptions; title: string; subtitle: string;
}): void {
  const { divisor } = how;
  if (values.folded) process.stdout.write(formatFolded(stacks, divisor));
  else if (values.pprof === undefined && values.html === undefined) {
    process.stdout.write(formatStacks(divisor === 1n ? stacks : stacks.map((s) => ({ ...s, value: s.value / divisor })).filter((s) => s.value > 0n), how.textUnit));
  }
  if (values.pprof !== undefined) writeFileSync(values.pprof, toPprof(stacks, how.pprof));
  if (values.html !== undefined) {
    writeFileSync(values.html, flameGraphHtml(flameTree(stacks, 'all', divisor), { title: how.title, subtitle: how.subtitle, unit: how.htmlUnit }));
  }
}

/**
 * Checks what the command line names before anything is loaded: the
 * process exists, the output files can be written (so a long profile is
 * not lost at the end).
 */
export function checkTargets(pid: number, files: (string | undefined)[]): void {
  if (pid) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') throw new UsageError(`no process with pid ${pid}`);
      // EPERM: it exists (we are not allowed to signal it, which does not matter).
    }
  }
  for (const f of files) {
    if (f === undefined) continue;
    if (f.trim() === '') throw new UsageError('an output file name is empty');
    try {
      accessSync(path.dirname(path.resolve(f)), constants.W_OK);
    } catch (e) {
      throw new UsageError(`cannot write ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
}

/** The number of samples the BPF side could not count (its counts map was full). */
export function droppedSamples(obj: BpfObject): bigint {
  const v = obj.map('dropped').raw.lookup(0) as Buffer | undefined;
  return v ? v.readBigUInt64LE() : 0n;
}

/** Folded stacks: `root;frame;...;leaf count`, one line per stack, values divided by `divisor`. */
export function formatFolded(stacks: readonly Stack[], divisor = 1n): string {
  return stacks
    .map((s) => ({ line: s.frames.join(';'), v: s.value / divisor }))
    .filter((s) => s.v > 0n)
    .map((s) => `${s.line} ${s.v}\n`)
    .join('');
}

/** bcc's default output: each stack leaf first, a `-` line with comm and pid, then the count. */
export function formatStacks(stacks: readonly Stack[], unit: string): string {
  return stacks
    .map((s) => {
      const lines = s.frames.slice(1).reverse().map((f) => `    ${f}`);
      lines.push(`    ${'-'.padEnd(16)} ${s.comm} (${s.tgid})`, `        ${s.value}${unit ? ` ${unit}` : ''}`);
      return `${lines.join('\n')}\n`;
    })
    .join('\n');
}

export interface PprofOptions {
  /** The sample types, e.g. [['samples', 'count'], ['cpu', 'nanoseconds']]: a stack's value is multiplied by each factor. */
  sampleTypes: { type: string; unit: string; factor: bigint }[];
  periodType?: { type: string; unit: string };
  period?: bigint;
  durationNs: bigint;
  startNs: bigint;
}

/**
 * A gzipped pprof profile of the stacks: one location and function per
 * distinct frame name, one sample per stack (leaf first, as pprof wants),
 * labelled with its pid and comm.
 */
export function toPprof(stacks: readonly Stack[], opts: PprofOptions): Buffer {
  const st = new StringTable();
  const functions: PprofFunction[] = [];
  const locations: Location[] = [];
  const locOf = new Map<string, number>();
  const loc = (name: string): number => {
    let id = locOf.get(name);
    if (id === undefined) {
      id = locations.length + 1;
      const fn = new PprofFunction({ id, name: st.dedup(name), systemName: st.dedup(name) });
      functions.push(fn);
      locations.push(new Location({ id, line: [{ functionId: id, line: 0 }] }));
      locOf.set(name, id);
    }
    return id;
  };
  const samples = stacks.map((s) => new Sample({
    locationId: s.frames.map(loc).reverse(),
    value: opts.sampleTypes.map((t) => s.value * t.factor),
    label: [
      new Label({ key: st.dedup('pid'), num: s.tgid }),
      new Label({ key: st.dedup('comm'), str: st.dedup(s.comm) }),
    ],
  }));
  const profile = new Profile({
    sampleType: opts.sampleTypes.map((t) => new ValueType({ type: st.dedup(t.type), unit: st.dedup(t.unit) })),
    sample: samples,
    location: locations,
    function: functions,
    stringTable: st,
    timeNanos: opts.startNs,
    durationNanos: opts.durationNs,
    ...(opts.periodType ? { periodType: new ValueType({ type: st.dedup(opts.periodType.type), unit: st.dedup(opts.periodType.unit) }) } : {}),
    ...(opts.period !== undefined ? { period: opts.period } : {}),
  });
  return gzipSync(profile.encode());
}

/** d3-flame-graph's input: a tree of {name, value, children}. */
export interface FlameNode {
  name: string;
  value: number;
  children: FlameNode[];
}

/** The stacks as one tree under `root`, each node's value the total of its subtree. */
export function flameTree(stacks: readonly Stack[], root = 'all', divisor = 1n): FlameNode {
  const top: FlameNode = { name: root, value: 0, children: [] };
  const index = new Map<FlameNode, Map<string, FlameNode>>();
  for (const s of stacks) {
    const v = Number(s.value / divisor);
    if (v <= 0) continue;
    let node = top;
    node.value += v;
    for (const f of s.frames) {
      let kids = index.get(node);
      if (!kids) index.set(node, (kids = new Map()));
      let child = kids.get(f);
      if (!child) {
        child = { name: f, value: 0, children: [] };
        kids.set(f, child);
        node.children.push(child);
      }
      child.value += v;
      node = child;
    }
  }
  return top;
}

// The UMD builds d3-flame-graph needs, dependencies first: each adds its
// exports to the page's global `d3` (d3-transition only patches
// d3-selection, which is why the flame graph's UMD does not name it).
const D3_MODULES = [
  'd3-array', 'd3-dispatch', 'd3-timer', 'd3-color', 'd3-interpolate', 'd3-ease', 'd3-selection',
  'd3-transition', 'd3-format', 'd3-time', 'd3-time-format', 'd3-scale', 'd3-hierarchy',
] as const;

// The packages' "exports" maps hide their dist/ files from require.resolve:
// find each package's directory the way Node's resolution walks node_modules.
function packageDir(name: string): string {
  for (const dir of require.resolve.paths(name) ?? []) {
    if (existsSync(path.join(dir, name, 'package.json'))) return path.join(dir, name);
  }
  throw new Error(`cannot find the package ${name} (a development dependency of libbpf-node, needed for --html)`);
}

// Inline code must not close its <script> element early.
const scriptSafe = (js: string): string => js.replace(/<\/script/gi, '<\\/script');

/**
 * A self-contained HTML page: the d3 modules and d3-flame-graph (UMD
 * builds and CSS read from node_modules now) inlined with the data, so it
 * opens from a file with no network.
 */
export function flameGraphHtml(tree: FlameNode, opts: { title: string; subtitle: string; unit: string }): string {
  const d3 = D3_MODULES.map((m) => readFileSync(path.join(packageDir(m), 'dist', `${m}.min.js`), 'utf8')).join('\n;\n');
  const fgDir = path.join(packageDir('d3-flame-graph'), 'dist');
  const fg = readFileSync(path.join(fgDir, 'd3-flamegraph.umd.js'), 'utf8');
  const css = readFileSync(path.join(fgDir, 'd3-flamegraph.css'), 'utf8');
  // JSON in a script: '<' escaped so no frame name can end the element.
  const data = JSON.stringify(tree).replace(/</g, '\\u003c');
  const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${esc(opts.title)}</title>
<style>
${css}
body { font-family: Verdana, sans-serif; margin: 10px; }
h1 { font-size: 18px; margin: 0 0 4px; }
#sub { color: #555; font-size: 12px; margin: 0 0 8px; }
#details { min-height: 1.5em; font-size: 12px; color: #333; }
</style>
</head>
<body>
<h1>${esc(opts.title)}</h1>
<p id="sub">${esc(opts.subtitle)}
  <input id="term" placeholder="search" size="24"> <button id="reset">reset zoom</button></p>
<div id="chart"></div>
<div id="details"></div>
<script>${scriptSafe(d3)}</script>
<script>${scriptSafe(fg)}</script>
<script>
(function () {
  var data = ${data};
  var unit = ${JSON.stringify(opts.unit)};
  var el = document.getElementById('chart');
  var chart = flamegraph.default()
    .width(Math.max(600, el.clientWidth || 1200))
    .cellHeight(18)
    .transitionDuration(0)
    .minFrameSize(1)
    .sort(true)
    .setColorMapper(function (d, original) {
      // Kernel frames orange, as flamegraph.pl colors them; the root frames grey.
      if (/_\\[k\\]$/.test(d.data.name)) return '#f0a040';
      if (d.depth <= 1) return '#c8c8c8';
      return original;
    })
    .setDetailsElement(document.getElementById('details'))
    .label(function (d) { return d.data.name + ' (' + d.value + ' ' + unit + ', ' + (100 * d.value / data.value).toFixed(2) + '%)'; });
  d3.select(el).datum(data).call(chart);
  document.getElementById('term').addEventListener('input', function (e) { chart.search(e.target.value); });
  document.getElementById('reset').addEventListener('click', function () { chart.resetZoom(); });
})();
</script>
</body>
</html>
`;
}
