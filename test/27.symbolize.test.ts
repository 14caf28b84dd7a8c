import { strict as assert } from 'node:assert';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfError, Symbolizer, features, formatFrame, type BpfObject, type StackTrace } from '../ts/index.js';
import { ROOT, itIf, throwsWith } from './helpers.js';
import { sampled, stacksObject, tracepointStacks, withTracepoint } from './stack_probe.js';

// Symbolizers against real processes: a C program built here (its function
// names checked against nm's addresses plus the load bias read from its
// maps), libc, a node with V8's perf map, kernel stacks of getppid(). The
// addresses come from the kernel (perf-event samples and tracepoint stacks
// in a stack map) or from nm; nothing is made up.

const SPIN_C = path.join(ROOT, 'test', 'fixtures', 'spin.c');
const KERNEL_BASE = 0xffff_8000_0000_0000n;

let dir = '';
const children: ChildProcess[] = [];

/** nm's address of `symbol` in `file` (-D: the dynamic symbols). */
function nm(file: string, symbol: string, dynamic = false): bigint {
  const out = execFileSync('nm', [...(dynamic ? ['-D'] : []), '--defined-only', file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const line = out.split('\n').find((l) => / [TtWi] /.test(l) && l.replace(/@.*$/, '').endsWith(` ${symbol}`));
  assert.ok(line, `nm finds ${symbol} in ${file}`);
  return BigInt(`0x${line.split(' ')[0]}`);
}

/** Where `file` is mapped at file offset 0 in process `pid` (its load bias for a PIE or shared object), read from /proc/PID/maps here. */
function mappedAt(pid: number, match: (p: string) => boolean): { start: bigint; path: string } {
  for (const l of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const f = l.split(/\s+/);
    if (f.length >= 6 && f[2] === '00000000' && match(f.slice(5).join(' '))) return { start: BigInt(`0x${f[0]!.split('-')[0]}`), path: f.slice(5).join(' ') };
  }
  return assert.fail(`no mapping at offset 0 in process ${pid}`);
}

function buildId(file: string): string {
  const m = /Build ID: ([0-9a-f]+)/.exec(execFileSync('readelf', ['-n', file], { encoding: 'utf8' }));
  assert.ok(m, `${file} has a build id`);
  return m[1]!;
}

/** Starts `cmd` and waits for its "ready" line. */
async function start(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: env ?? process.env });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready`)));
  });
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  return gone;
}

/** The user stacks of `pid` that CPU-clock samples (perf event at `freq` Hz, for `ms`) caught. */
async function sampleUserStacks(o: BpfObject, pid: number, ms: number, freq = 1999): Promise<StackTrace[]> {
  const links = o.program('stack_sample').attachPerfEvent({ type: 'software', config: 'cpu-clock', sampleFreq: freq, pid });
  try {
    await sleep(ms);
  } finally {
    for (const l of Array.isArray(links) ? links : [links]) l.detach();
  }
  const map = o.map<number, StackTrace>('stacks');
  return sampled(o).filter(([k]) => k.ustack >= 0).map(([k]) => map.lookup(k.ustack)).filter((s): s is StackTrace => s !== undefined);
}

const perfEvents = features.programType('perf_event');

describe('symbolizers', function () {
  // children to start and sample (slower under emulation, where CI's timeout is longer)
  this.timeout(Math.max(60_000, this.timeout()));
  let spinPie = '';
  let spinExec = '';

  before(function () {
    dir = mkdtempSync(path.join(tmpdir(), 'lbn-sym-'));
    spinPie = path.join(dir, 'lbn-spin');
    spinExec = path.join(dir, 'lbn-spin-nopie');
    // -O0: frame pointers in leaf functions too (GCC 12 leaves them out of
    // lbn_spin at -O1 even with -fno-omit-frame-pointer), so that user stacks unwind through it
    const flags = ['-O0', '-g', '-fno-omit-frame-pointer'];
    execFileSync('cc', [...flags, '-fPIE', '-pie', '-o', spinPie, SPIN_C]);
    execFileSync('cc', [...flags, '-no-pie', '-o', spinExec, SPIN_C]);
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      await stop(c);
      // V8 leaves its perf map behind
      if (c.pid) rmSync(`/tmp/perf-${c.pid}.map`, { force: true });
    }
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('Symbolizer.kernel()', () => {
    it('resolves kallsyms addresses to { name, offset, module? }, nearest symbol below', () => {
      const ksyms = Symbolizer.kernel();
      assert.equal(ksyms.kind, 'kernel');
      // symbols read from /proc/kallsyms here: a core one, and a module's if any module is loaded
      const lines = readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(/[ \t]/)).filter((f) => f.length >= 3);
      const core = lines.find((f) => f[2] === 'do_syscall_64' || f[2] === 'schedule')!;
      assert.ok(core, 'a well-known kernel function');
      const addr = BigInt(`0x${core[0]}`);
      assert.deepEqual(ksyms.resolve(addr + 4n), { addr: addr + 4n, kind: 'kernel', name: core[2], offset: 4n });
      assert.equal(ksyms.resolve(Number.MAX_SAFE_INTEGER).kind, 'unknown', 'a user address is no kernel symbol');
      assert.deepEqual(ksyms.resolve(0n), { addr: 0n, kind: 'unknown', mapping: '[kernel]' });
      const mod = lines.find((f) => /^[tT]$/.test(f[1]!) && f[3]?.startsWith('[') && f[3] !== '[bpf]' && !f[3].startsWith('[__builtin'));
      if (mod) {
        const f = ksyms.resolve(BigInt(`0x${mod[0]}`));
        assert.equal(f.module, mod[3]!.slice(1, -1));
        assert.equal(f.kind, 'kernel');
      }
      assert.ok(ksyms.size > 10_000);
      assert.equal(formatFrame(ksyms.resolve(addr + 4n), { offset: true }), `${core[2]}+0x4`);
    });

    itIf('tracepointKernelStacks', tracepointStacks('kernel'))('the kernel stacks of getppid() resolve to the syscall path', function () {
      using o = stacksObject(process.pid);
      withTracepoint(o, () => {
        for (let i = 0; i < 3; i++) void process.ppid;
      });
      const map = o.map<number, StackTrace>('stacks');
      const id = sampled(o).map(([k]) => k.kstack).find((k) => k >= 0)!;
      const frames = Symbolizer.kernel().resolveAll(map.lookup(id)!);
      assert.ok(frames.length >= 2);
      for (const f of frames) assert.equal(f.kind, 'kernel', `${f.addr.toString(16)} resolves: ${JSON.stringify(f, (_, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
      const names = frames.map((f) => f.name!);
      assert.ok(names.some((n) => /getppid|do_syscall_64|entry_SYSCALL_64/.test(n)), `syscall path in ${names.join(' <- ')}`);
    });

    const jitKallsyms = readFileSync('/proc/sys/net/core/bpf_jit_kallsyms', 'utf8').trim() === '1' || 'net.core.bpf_jit_kallsyms is 0: BPF programs are not in kallsyms';
    itIf('bpfJitKallsyms', jitKallsyms)('refresh() sees programs loaded since: module "bpf"', function () {
      const ksyms = Symbolizer.kernel();
      using o = stacksObject(process.pid);
      ksyms.refresh();
      const tag = o.program('stack_getppid').tag;
      const line = readFileSync('/proc/kallsyms', 'utf8').split('\n').find((l) => l.includes(`bpf_prog_${tag}_stack_getppid`));
      assert.ok(line, 'the program is in kallsyms');
      const f = ksyms.resolve(BigInt(`0x${line.split(' ')[0]}`) + 1n);
      assert.deepEqual([f.kind, f.name, f.offset, f.module], ['kernel', `bpf_prog_${tag}_stack_getppid`, 1n, 'bpf']);
    });

    it('errors: hidden addresses (kptr_restrict) say so; a missing file is ENOENT; bad addresses are TypeError/RangeError; use after close', () => {
      // what a process without CAP_SYSLOG reads from /proc/kallsyms: every address 0
      const hidden = path.join(dir, 'kallsyms-hidden');
      writeFileSync(hidden, readFileSync('/proc/kallsyms', 'utf8').split('\n').slice(0, 2000).map((l) => l.replace(/^[0-9a-f]+/, '0000000000000000')).join('\n'));
      const e = throwsWith(() => Symbolizer.kernel({ path: hidden }), { code: 'EPERM', op: 'open', target: hidden }, BpfError);
      assert.match(e.message, /kptr_restrict/);
      throwsWith(() => Symbolizer.kernel({ path: path.join(dir, 'none') }), { code: 'ENOENT', op: 'open' }, BpfError);
      const ksyms = Symbolizer.kernel();
      throwsWith(() => ksyms.resolve('0xffff' as unknown as bigint), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => ksyms.resolve(-1n), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => ksyms.resolve(2 ** 64), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => ksyms.resolveAll(5n as unknown as bigint[]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      ksyms.close();
      ksyms.close();
      assert.equal(ksyms.closed, true);
      throwsWith(() => ksyms.resolve(KERNEL_BASE), { code: 'ERR_INVALID_STATE' }, TypeError);
      // the shared table is not closed with it
      assert.equal(Symbolizer.kernel().resolve(KERNEL_BASE).addr, KERNEL_BASE);
    });
  });

  describe('Symbolizer.process(): native code', () => {
    itIf('perfEvents', perfEvents)('samples of a spinning C program resolve to its function, with file, ELF address and build id', async () => {
      const child = await start(spinPie, []);
      using o = stacksObject(child.pid!);
      using usyms = Symbolizer.process(child.pid!);
      const stacks = await sampleUserStacks(o, child.pid!, 300);
      assert.ok(stacks.length >= 1, 'user stacks sampled');
      const leaves = stacks.map((s) => usyms.resolve(s[0]!));
      const spin = leaves.find((f) => f.name === 'lbn_spin');
      assert.ok(spin, `lbn_spin among the leaves: ${leaves.map((f) => formatFrame(f)).join(', ')}`);
      assert.equal(spin.kind, 'native');
      assert.equal(spin.module, spinPie);
      assert.equal(spin.mapping, spinPie);
      assert.equal(spin.buildId, buildId(spinPie));
      const start0 = nm(spinPie, 'lbn_spin');
      assert.equal(spin.elfAddr, start0 + spin.offset!, 'the address in the file is nm\'s plus the offset');
      // the whole stack: lbn_spin called from main
      // (a sample in lbn_spin's prologue or epilogue has no frame of its own yet: main is missed there)
      const full = stacks.filter((s) => usyms.resolve(s[0]!).name === 'lbn_spin').map((s) => usyms.resolveStack(s));
      assert.ok(full.some((s) => s[1]?.name === 'main'), `main in ${full.map((s) => s.map((f) => formatFrame(f)).join(' <- ')).join('; ')}`);
    });

    it('nm addresses plus the load bias from /proc/PID/maps resolve to the same names: PIE, non-PIE, and libc', async () => {
      for (const bin of [spinPie, spinExec]) {
        const child = await start(bin, []);
        using usyms = Symbolizer.process(child.pid!);
        // PIE: the bias is where the file's offset 0 is mapped (its first PT_LOAD has vaddr 0); non-PIE: none
        const bias = bin === spinPie ? mappedAt(child.pid!, (p) => p === bin).start : 0n;
        for (const sym of ['lbn_spin', 'lbn_syscalls', 'main']) {
          const at = nm(bin, sym);
          const f = usyms.resolve(bias + at + 3n);
          assert.deepEqual([f.kind, f.name, f.offset, f.elfAddr, f.module], ['native', sym, 3n, at + 3n, bin], `${sym} in ${bin}`);
        }
        const libc = mappedAt(child.pid!, (p) => /\/libc[.-]/.test(p));
        const getppid = nm(libc.path, 'getppid', true);
        const f = usyms.resolve(libc.start + getppid + 1n);
        assert.deepEqual([f.kind, f.name, f.offset, f.module], ['native', 'getppid', 1n, libc.path]);
        assert.equal(f.buildId, buildId(libc.path));
        await stop(child);
      }
    });

    it('resolveStack(): return addresses are looked up at addr - 1, so a call that ends a function names it', async () => {
      const child = await start(spinPie, []);
      using usyms = Symbolizer.process(child.pid!);
      const bias = mappedAt(child.pid!, (p) => p === spinPie).start;
      // the end of lbn_spin (nm -S: start and size), where a return address lands after a last call
      const [startHex, sizeHex] = execFileSync('nm', ['-S', '--defined-only', spinPie], { encoding: 'utf8' }).split('\n').find((l) => l.endsWith(' lbn_spin'))!.split(' ');
      const end = BigInt(`0x${startHex}`) + BigInt(`0x${sizeHex}`);
      const leaf = bias + nm(spinPie, 'main');
      assert.notEqual(usyms.resolve(bias + end).name, 'lbn_spin', 'past the end: another symbol or none');
      const [first, second] = usyms.resolveStack([leaf, bias + end]);
      assert.deepEqual([first!.name, first!.offset], ['main', 0n], 'the first frame as it is');
      assert.deepEqual([second!.addr, second!.name, second!.offset, second!.elfAddr], [bias + end, 'lbn_spin', BigInt(`0x${sizeHex}`), end]);
      const [k0, k1] = Symbolizer.kernel().resolveStack([KERNEL_BASE, KERNEL_BASE]);
      assert.equal(k0!.addr, k1!.addr);
      throwsWith(() => usyms.resolveStack('x' as unknown as bigint[]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    });

    itIf('tracepointUserStacks', tracepointStacks('user'))('user stacks of getppid() in a C program: libc\'s getppid, then the program\'s caller', async function () {
      const child = await start(spinPie, ['syscalls']);
      using o = stacksObject(child.pid!);
      using usyms = Symbolizer.process(child.pid!);
      withTracepoint(o, () => execFileSync('sleep', ['0.1']));
      const map = o.map<number, StackTrace>('stacks');
      const ids = sampled(o).map(([k]) => k.ustack).filter((k) => k >= 0);
      assert.ok(ids.length >= 1, 'user stacks of the child');
      const stack = map.lookup(ids[0]!)!;
      const frames = usyms.resolveStack(stack);
      assert.equal(frames[0]!.name, 'getppid', `leaf: ${formatFrame(frames[0]!)}`);
      assert.match(frames[0]!.module!, /\/libc[.-]/);
      assert.ok(frames.slice(1).some((f) => f.module === spinPie && (f.name === 'lbn_syscalls' || f.name === 'main')),
        `the program below: ${frames.map((f) => formatFrame(f)).join(' <- ')}`);
      assert.deepEqual(frames.map((f) => f.addr), stack, 'frames keep the addresses');
    });

    it('a stripped program: its frames stay unknown and name the file and the ELF address; a deleted file is read through map_files', async () => {
      const stripped = path.join(dir, 'lbn-spin-stripped');
      copyFileSync(spinPie, stripped);
      execFileSync('strip', ['--strip-all', stripped]);
      const child = await start(stripped, []);
      using usyms = Symbolizer.process(child.pid!);
      const bias = mappedAt(child.pid!, (p) => p === stripped).start;
      const at = nm(spinPie, 'lbn_spin');
      const f = usyms.resolve(bias + at);
      assert.deepEqual([f.kind, f.name, f.module, f.mapping, f.elfAddr], ['unknown', undefined, stripped, stripped, at]);
      assert.equal(formatFrame(f), '[unknown] [lbn-spin-stripped]');
      await stop(child);

      const doomed = path.join(dir, 'lbn-spin-deleted');
      copyFileSync(spinPie, doomed);
      const child2 = await start(doomed, []);
      const bias2 = mappedAt(child2.pid!, (p) => p.startsWith(doomed)).start;
      unlinkSync(doomed);
      using usyms2 = Symbolizer.process(child2.pid!);
      const g = usyms2.resolve(bias2 + at + 2n);
      assert.deepEqual([g.kind, g.name, g.offset, g.module], ['native', 'lbn_spin', 2n, doomed]);
      assert.equal(usyms2.mappings().find((m) => m.path === doomed)?.deleted, true);
    });

    it('a program in its own mount namespace (a container\'s files): read through /proc/PID/root', async function () {
      // the binary exists only in the child's namespace: a tmpfs mounted there over an empty directory
      const inside = mkdtempSync(path.join(dir, 'ns-'));
      const child = await start('unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
        `mount -t tmpfs lbn-sym ${inside} && cp ${spinPie} ${inside}/spin && exec ${inside}/spin`]);
      const bin = `${inside}/spin`;
      assert.equal(existsSync(bin), false, 'not visible here');
      using usyms = Symbolizer.process(child.pid!);
      // the path as /proc/PID/maps shows it to a reader outside the namespace:
      // in the CI VMs, whose root is not the namespace's, with a prefix
      // ('/newroot/tmp/...'), which /proc/PID/root does not have either: then
      // the file is read through /proc/PID/map_files
      const mapped = mappedAt(child.pid!, (p) => p.endsWith(bin));
      const at = nm(spinPie, 'lbn_spin');
      const f = usyms.resolve(mapped.start + at + 1n);
      assert.deepEqual([f.kind, f.name, f.offset, f.module], ['native', 'lbn_spin', 1n, mapped.path]);
    });

    it('C++ names are demangled with c++filt (mangledName keeps the ELF\'s), or kept with demangle: false', async function () {
      const src = path.join(dir, 'spin.cc');
      const bin = path.join(dir, 'lbn-spin-cc');
      writeFileSync(src, `#include <cstdio>
namespace lbn { struct Spinner { static void spin(int n); }; }
volatile int sink;
__attribute__((noinline)) void lbn::Spinner::spin(int n) { for (int i = 0; i < n; i++) sink += i; }
int main() { std::printf("ready\\n"); std::fflush(stdout); for (;;) lbn::Spinner::spin(1000000); }
`);
      execFileSync('g++', ['-O1', '-fno-omit-frame-pointer', '-o', bin, src]);
      const child = await start(bin, []);
      const bias = mappedAt(child.pid!, (p) => p === bin).start;
      const at = nm(bin, '_ZN3lbn7Spinner4spinEi');
      using usyms = Symbolizer.process(child.pid!);
      const [f] = usyms.resolveAll([bias + at]);
      assert.deepEqual([f!.kind, f!.name, f!.mangledName], ['native', 'lbn::Spinner::spin(int)', '_ZN3lbn7Spinner4spinEi']);
      using raw = Symbolizer.process(child.pid!, { demangle: false });
      const g = raw.resolve(bias + at);
      assert.deepEqual([g.name, g.mangledName], ['_ZN3lbn7Spinner4spinEi', undefined]);
    });
  });

  describe('Symbolizer.process(): JavaScript and unknown frames', () => {
    // lbnHotLoop is optimized (TurboFan, JIT code in anonymous memory) before "ready"
    const HOT = `function lbnHotLoop(n) { let s = 0; for (let i = 0; i < n; i++) s += Math.sqrt(i) * i % 7; return s; }
%PrepareFunctionForOptimization(lbnHotLoop); lbnHotLoop(10); lbnHotLoop(10);
%OptimizeFunctionOnNextCall(lbnHotLoop); lbnHotLoop(10);
console.log('ready'); let t = 0; for (;;) t += lbnHotLoop(1e5);`;

    // Until V8 compiled lbnHotLoop (baseline '^' or optimized '*'): until
    // then its frames are the interpreter's, named by the node binary.
    async function compiled(perfMap: string): Promise<void> {
      for (let i = 0; i < 400; i++) {
        if (existsSync(perfMap) && /JS:[*^]lbnHotLoop/.test(readFileSync(perfMap, 'utf8'))) return;
        await sleep(50);
      }
      assert.fail(`V8 did not compile lbnHotLoop within 20 s (${perfMap})`);
    }

    itIf('perfEvents', perfEvents)('node --perf-basic-prof: samples of a hot function resolve to its name by the perf map', async () => {
      const child = await start(process.execPath, ['--perf-basic-prof', '--allow-natives-syntax', '-e', HOT]);
      await compiled(`/tmp/perf-${child.pid}.map`);
      using o = stacksObject(child.pid!);
      using usyms = Symbolizer.process(child.pid!);
      const stacks = await sampleUserStacks(o, child.pid!, 500);
      assert.ok(stacks.length >= 1);
      const frames = stacks.flatMap((s) => usyms.resolveAll(s));
      const js = frames.filter((f) => f.kind === 'js');
      const hot = js.find((f) => f.name!.includes('lbnHotLoop'));
      assert.ok(hot, `lbnHotLoop among the JS frames: ${[...new Set(js.map((f) => f.name))].slice(0, 10).join(', ')}`);
      assert.match(hot.name!, /^JS:[*^~+]?lbnHotLoop \[eval\]/);
      assert.ok(hot.offset! >= 0n && hot.mapping !== undefined && hot.module === undefined);
      assert.equal(usyms.perfMap!.path, `/tmp/perf-${child.pid}.map`);
      assert.ok(usyms.perfMap!.entries > 100);
      // an entry of the perf map, read here: its start resolves to it
      const line = readFileSync(`/tmp/perf-${child.pid}.map`, 'utf8').split('\n').filter((l) => l.includes('lbnHotLoop')).at(-1)!;
      const [startHex, , ...name] = line.split(' ');
      const e = usyms.resolve(BigInt(`0x${startHex}`));
      assert.deepEqual([e.kind, e.name, e.offset], ['js', name.join(' '), 0n]);
    });

    itIf('perfEvents', perfEvents)('without a perf map, JIT frames are unknown and name their mapping; perfMap says what is missing', async () => {
      const child = await start(process.execPath, ['--allow-natives-syntax', '-e', HOT]);
      using o = stacksObject(child.pid!);
      using usyms = Symbolizer.process(child.pid!);
      const stacks = await sampleUserStacks(o, child.pid!, 300);
      const frames = stacks.flatMap((s) => usyms.resolveAll(s));
      assert.equal(frames.filter((f) => f.kind === 'js').length, 0);
      const anon = frames.filter((f) => f.kind === 'unknown' && f.module === undefined);
      assert.ok(anon.length >= 1, 'JIT code: unknown');
      for (const f of anon) assert.match(f.mapping!, /^\[anon/);
      assert.match(usyms.perfMap!.problem!, /--perf-basic-prof/);
      // node's own functions (the binary's symbols) still resolve
      assert.ok(frames.some((f) => f.kind === 'native' && f.module === execFileSync('readlink', ['-f', process.execPath], { encoding: 'utf8' }).trim()));
    });

    it('a perf map left by an earlier process with the same pid is ignored; one written since is read, also as it grows', async () => {
      const child = await start(spinPie, []);
      const pid = child.pid!;
      const file = `/tmp/perf-${pid}.map`;
      using probe = Symbolizer.process(pid);
      const anon = probe.mappings().find((m) => m.path === '[stack]')!; // any memory without a file: JIT code lives in such
      const at = anon.start + 0x100n;
      writeFileSync(file, `${(at - 0x10n).toString(16)} 40 JS:*lbnStale /old.js:1:1\n`);
      const old = new Date(Date.now() - 3_600_000);
      utimesSync(file, old, old);
      using stale = Symbolizer.process(pid);
      assert.deepEqual(stale.resolve(at), { addr: at, kind: 'unknown', mapping: '[stack]' });
      assert.match(stale.perfMap!.problem!, /earlier process/);
      // V8 (re)writes it: read; lines appended later are read on a miss
      writeFileSync(file, `${(at - 0x10n).toString(16)} 40 JS:*lbnFresh /new.js:1:1\n`);
      using fresh = Symbolizer.process(pid);
      assert.deepEqual(fresh.resolve(at), { addr: at, kind: 'js', name: 'JS:*lbnFresh /new.js:1:1', offset: 0x10n, mapping: '[stack]' });
      appendFileSync(file, `${(at + 0x100n).toString(16)} 8 JS:~lbnLater /new.js:2:1\n`);
      assert.equal(fresh.resolve(at + 0x104n).name, 'JS:~lbnLater /new.js:2:1');
      // a later line for the same code supersedes the earlier one (V8 reuses code space)
      appendFileSync(file, `${(at - 0x10n).toString(16)} 40 JS:^lbnReused /new.js:3:1\n`);
      fresh.refresh();
      assert.equal(fresh.resolve(at).name, 'JS:^lbnReused /new.js:3:1');
      assert.equal(fresh.perfMap!.entries, 3);
      rmSync(file);
    });

    it('unknown frames name their mapping: [stack], [vdso], [anon], [unmapped]', async () => {
      const child = await start(spinPie, []);
      using usyms = Symbolizer.process(child.pid!);
      const maps = usyms.mappings();
      for (const name of ['[stack]', '[vdso]']) {
        const m = maps.find((x) => x.path === name);
        assert.ok(m, `${name} mapped`);
        assert.deepEqual(usyms.resolve(m.start + 8n), { addr: m.start + 8n, kind: 'unknown', mapping: name });
      }
      const anon = maps.find((x) => x.path === '' && x.inode === 0);
      if (anon) assert.equal(usyms.resolve(anon.start).mapping, '[anon]');
      assert.deepEqual(usyms.resolve(0x10n), { addr: 0x10n, kind: 'unknown', mapping: '[unmapped]' });
      assert.equal(formatFrame(usyms.resolve(0x10n)), '[unknown] [unmapped]');
    });

    it('errors: a process that does not exist is ESRCH; bad pids and addresses are TypeError/RangeError; after close ERR_INVALID_STATE; an exited process still resolves', async () => {
      const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
      const e = throwsWith(() => Symbolizer.process(pidMax), { code: 'ESRCH', errno: 3, op: 'open', target: `/proc/${pidMax}/maps` }, BpfError);
      assert.match(e.message, new RegExp(`process ${pidMax} does not exist`));
      throwsWith(() => Symbolizer.process(0), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => Symbolizer.process(-5), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => Symbolizer.process('1' as unknown as number), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => Symbolizer.process(process.pid, { demangle: 'yes' as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => Symbolizer.process(process.pid, { perfMap: 5 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);

      const child = await start(spinPie, []);
      const usyms = Symbolizer.process(child.pid!);
      const bias = mappedAt(child.pid!, (p) => p === spinPie).start;
      const at = nm(spinPie, 'lbn_spin');
      throwsWith(() => usyms.resolve({} as unknown as bigint), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => usyms.resolveAll([1n, -1n]), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      await stop(child);
      // the maps were read at creation; the file is where it was
      assert.equal(usyms.resolve(bias + at).name, 'lbn_spin');
      throwsWith(() => usyms.refresh(), { code: 'ESRCH' }, BpfError);
      assert.equal(usyms.resolve(bias + at).name, 'lbn_spin', 'a failed refresh keeps what was known');
      usyms.close();
      usyms.close();
      throwsWith(() => usyms.resolve(bias + at), { code: 'ERR_INVALID_STATE' }, TypeError);
      throwsWith(() => usyms.mappings(), { code: 'ERR_INVALID_STATE' }, TypeError);
    });
  });
});
