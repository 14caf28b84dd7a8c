// The profilers of examples/ (profile.ts, offcputime.ts) end to end: they
// run as commands against real target processes (a node process with a hot
// JS function under --perf-basic-prof, a small C binary built here with
// frame pointers) and what they write is checked: the hot function's name
// in the hottest folded stack, C and kernel functions by name, the pprof
// file decoded back with pprof-format, the HTML page rendered by headless
// Chromium.
import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { features, type FeatureResult } from '../ts/index.js';
import { itIf, ROOT } from './helpers.js';

const example = (name: string): string => path.join(ROOT, 'dist', 'examples', `${name}.js`);

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs an example to its end (its duration argument), without blocking the event loop. */
function runExample(name: string, args: string[], timeoutMs = 100_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [example(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} ${args.join(' ')} did not end: ${stderr}`)); }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Starts a target and resolves once it printed "ready" (its code is loaded and running). */
function startTarget(cmd: string, args: string[]): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} never got ready`)); }, 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) { clearTimeout(timer); resolve(child); }
    });
    child.on('error', reject);
  });
}

/** Folded output as [stack, count] lines, hottest first. */
function folded(text: string): [string, number][] {
  return text.trim().split('\n').filter(Boolean).map((l) => {
    const i = l.lastIndexOf(' ');
    return [l.slice(0, i), Number(l.slice(i + 1))] as [string, number];
  }).sort((a, b) => b[1] - a[1]);
}

// gcc builds the C target; without it (no compiler on the machine) the tests that need it skip.
function probeGcc(): FeatureResult {
  const r = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? true : 'no gcc to build the C target';
}
// Headless Chromium renders the page; Debian's package is `chromium`. The
// probe has it run a small page's script in an animation frame (as d3's
// transitions do) and dump the DOM: a Chromium that starts but cannot do
// that (as under CI's emulated VMs) is a missing feature, with its reason.
const CHROMIUM = '/usr/bin/chromium';
const chromiumArgs = (profileDir: string): string[] => [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', `--user-data-dir=${profileDir}`, '--virtual-time-budget=5000',
];
function probeChromium(): FeatureResult {
  if (!existsSync(CHROMIUM)) return `no ${CHROMIUM} (Debian package chromium)`;
  const profileDir = mkdtempSync(path.join(tmpdir(), 'lbn-chromium-probe-'));
  try {
    const page = '<body><script>requestAnimationFrame(function () { var p = document.createElement("p"); p.id = "lbn"; p.textContent = "drawn"; document.body.appendChild(p); });</script></body>';
    // Twice: on this project's VM a loaded moment once left the frame
    // undrawn (in 2 of 3 full suite runs one day) where the next try draws it.
    let why = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = spawnSync(CHROMIUM, [...chromiumArgs(profileDir), '--dump-dom', `data:text/html,${encodeURIComponent(page)}`], { encoding: 'utf8', timeout: 90_000 });
      if (r.status === 0 && r.stdout.includes('<p id="lbn">drawn</p>')) return true;
      why = r.error?.message ?? (r.signal ? `killed by ${r.signal}` : r.status !== 0 ? `exit status ${r.status}` : 'the script did not run');
    }
    return `headless chromium did not draw a test page, twice (${why})`;
  } finally {
    rmSync(profileDir, { recursive: true, force: true });
  }
}
const perfEvents = features.programType('perf_event');
const gcc = probeGcc();
const chromium = probeChromium();

// The hot JS function: a loop long enough that each call is milliseconds,
// called from a setImmediate chain that is too cold to inline it.
const HOT_JS = `
function lbnHotJsLoop(n) { let x = 0; for (let i = 0; i < n; i++) x = (x * 31 + i) | 0; return x; }
let sink = 0;
(function tick() { sink ^= lbnHotJsLoop(3e6); setImmediate(tick); })();
console.log('ready');
`;

describe('profile and offcputime: the whole-system profilers of examples/', function () {
  this.timeout(150_000);
  const dir = mkdtempSync(path.join(tmpdir(), 'lbn-profile-'));
  const HOT = path.join(dir, 'hot');
  const children: ChildProcess[] = [];
  const stop = (c: ChildProcess): void => { if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); };

  before(function () {
    if (gcc === true) execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', '-o', HOT, path.join(ROOT, 'test', 'fixtures', 'hot.c')]);
  });
  after(function () {
    children.forEach(stop);
    rmSync(dir, { recursive: true, force: true });
  });

  describe('profile -p PID -F 99 of a node process running a hot JS function, 2 s', function () {
    const pprofFile = path.join(dir, 'cpu.pb.gz');
    const htmlFile = path.join(dir, 'flame.html');
    let run: Run;
    let node: ChildProcess;

    before(async function () {
      if (perfEvents !== true) return;
      const script = path.join(dir, 'hot.js');
      writeFileSync(script, HOT_JS);
      node = await startTarget(process.execPath, ['--perf-basic-prof', '--interpreted-frames-native-stack', script]);
      children.push(node);
      run = await runExample('profile', ['-p', String(node.pid), '-F', '99', '--folded', '--pprof', pprofFile, '--html', htmlFile, '2']);
      stop(node);
    });
    after(() => rmSync(`/tmp/perf-${node?.pid}.map`, { force: true }));

    itIf('perfEvents', perfEvents)('the function\'s name is in the hottest folded stack, under the process root', function () {
      assert.equal(run.code, 0, run.stderr);
      const lines = folded(run.stdout);
      assert.ok(lines.length > 0, run.stderr);
      // Only the target's threads: every root frame is comm-pid of the node process.
      for (const [stack] of lines) assert.match(stack, new RegExp(`^[^;]+-${node.pid}(;|$)`), stack);
      const [hottest, count] = lines[0]!;
      assert.match(hottest, /;[^;]*lbnHotJsLoop[^;]*(;|$)/, `hottest: ${hottest} ${count}`);
      // 2 s at 99 Hz of a process busy on one CPU: up to ~198 samples, fewer
      // when other work shares the CPUs (CI machines, VMs); most in the function.
      const total = lines.reduce((a, [, n]) => a + n, 0);
      assert.ok(total >= 20 && total <= 2 * 99 * 2 + 20, `${total} samples`);
      const inHot = lines.filter(([s]) => s.includes('lbnHotJsLoop')).reduce((a, [, n]) => a + n, 0);
      assert.ok(inHot >= total * 0.6, `${inHot} of ${total} samples in lbnHotJsLoop`);
      assert.match(run.stderr, new RegExp(`^${total} samples in ${lines.length} stacks$`, 'm'));
    });

    itIf('perfEvents', perfEvents)('the pprof file decodes (pprof-format) to the same stacks and counts as the folded output', function () {
      const profile = Profile.decode(gunzipSync(readFileSync(pprofFile)));
      const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)]!;
      assert.deepEqual(profile.sampleType.map((t) => [str(t.type), str(t.unit)]), [['samples', 'count'], ['cpu', 'nanoseconds']]);
      assert.equal(str(profile.periodType!.type), 'cpu');
      assert.equal(Number(profile.period), Math.round(1e9 / 99));
      assert.ok(Number(profile.durationNanos) >= 1.9e9, String(profile.durationNanos));
      const fnName = new Map(profile.function.map((f) => [Number(f.id), str(f.name)]));
      const locFn = new Map(profile.location.map((l) => [Number(l.id), Number(l.line[0]!.functionId)]));
      const fromPprof = new Map<string, number>();
      for (const s of profile.sample) {
        // pprof lists a sample's locations leaf first; folded stacks root first.
        const stack = s.locationId.map((id) => fnName.get(locFn.get(Number(id))!)!).reverse().join(';');
        fromPprof.set(stack, Number(s.value[0]));
        assert.equal(BigInt(s.value[1]!), BigInt(s.value[0]!) * BigInt(Math.round(1e9 / 99)));
        const labels = Object.fromEntries(s.label.map((l) => [str(l.key), l.num ? Number(l.num) : str(l.str)]));
        assert.equal(labels['pid'], node.pid);
        assert.equal(stack.split(';')[0], `${labels['comm']}-${node.pid}`);
      }
      assert.deepEqual(fromPprof, new Map(folded(run.stdout)));
    });

    itIf('chromium', chromium)('the HTML page is self-contained and renders the function\'s name in headless Chromium', function () {
      const html = readFileSync(htmlFile, 'utf8');
      // No network: no external script, stylesheet or image.
      assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=|https?:\/\/[^"'\s]*\.(js|css)\b/);
      const r = spawnSync(CHROMIUM, [...chromiumArgs(path.join(dir, 'chromium')), '--dump-dom', `file://${htmlFile}`],
        { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
      assert.equal(r.status, 0, r.stderr);
      // d3-flame-graph drew one frame (an svg <g> with a label div) per node: the hot function's is shown.
      const labels = [...r.stdout.matchAll(/<div class="d3-flame-graph-label" style="display: block;">([^<]*)<\/div>/g)].map((m) => m[1]!);
      assert.ok(labels.some((l) => l.includes('lbnHotJsLoop')), `labels: ${labels.slice(0, 20).join(' | ')}`);
      assert.ok(labels.includes('all'), 'the root frame');
      assert.match(r.stdout, /<svg[^>]*class="[^"]*\bd3-flame-graph\b/);
    });
  });

  describe('profile (all CPUs) of a C binary in user code and in read(2)', function () {
    let run: Run;
    let hot: ChildProcess;

    before(async function () {
      if (perfEvents !== true || gcc !== true) return;
      hot = await startTarget(HOT, ['mix']);
      children.push(hot);
      run = await runExample('profile', ['-F', '99', '-f', '2']);
      stop(hot);
    });

    const cAndPerf = perfEvents !== true ? perfEvents : gcc;
    itIf('perfEvents', cAndPerf)('the C function resolves by name and kernel frames by kallsyms names', function () {
      assert.equal(run.code, 0, run.stderr);
      const mine = folded(run.stdout).filter(([s]) => s.startsWith(`hot-${hot.pid};`));
      assert.ok(mine.length > 0, `no stacks of hot-${hot.pid} in ${run.stdout.slice(0, 2000)}`);
      const frames = (s: string): string[] => s.split(';').slice(1);
      // User code: the spinning function, called from main.
      const spin = mine.filter(([s]) => frames(s).includes('lbn_hot_spin'));
      assert.ok(spin.length > 0, mine.map(([s]) => s).join('\n'));
      assert.ok(spin.some(([s]) => /;main;lbn_hot_spin/.test(s)), spin.map(([s]) => s).join('\n'));
      // In the kernel: read(2) of /dev/zero, as named in /proc/kallsyms.
      const kallsyms = new Set(readFileSync('/proc/kallsyms', 'utf8').split('\n').map((l) => l.split(/\s+/)[2]));
      const kernel = mine.filter(([s]) => s.includes('_[k]'));
      assert.ok(kernel.length > 0, mine.map(([s]) => s).join('\n'));
      const kFrames = kernel.flatMap(([s]) => frames(s).filter((f) => f.endsWith('_[k]')).map((f) => f.slice(0, -4)));
      const known = kFrames.filter((f) => kallsyms.has(f));
      assert.ok(known.length >= kFrames.length * 0.9, `unresolved kernel frames: ${kFrames.filter((f) => !kallsyms.has(f)).join(', ')}`);
      assert.ok(kFrames.some((f) => /^(ksys_read|vfs_read|read_zero|__x64_sys_read|do_syscall_64)$/.test(f)), kFrames.join(', '));
    });
  });

  describe('offcputime -p PID of a C binary sleeping in nanosleep(2), 1 s', function () {
    let run: Run;
    let nap: ChildProcess;

    // tp_btf (5.5) is on every kernel we support: no probe but the compiler's.
    before(async function () {
      if (gcc !== true) return;
      nap = await startTarget(HOT, ['nap']);
      children.push(nap);
      run = await runExample('offcputime', ['-p', String(nap.pid), '-f', '1']);
      stop(nap);
    });

    itIf('gcc', gcc)('the time off CPU is the time traced, under the nanosleep kernel frames and main', function () {
      assert.equal(run.code, 0, run.stderr);
      const lines = folded(run.stdout);
      assert.ok(lines.length > 0, run.stderr);
      for (const [stack] of lines) assert.ok(stack.startsWith(`hot-${nap.pid};`), stack);
      const [hottest] = lines[0]!;
      assert.match(hottest, /;do_nanosleep_\[k\]/, hottest);
      assert.match(hottest, /;main;/, hottest);
      assert.match(hottest, /;schedule_\[k\]/, hottest);
      // The leaf is the scheduler, not the BPF program and tracing glue that took the stack.
      assert.match(hottest, /;__schedule_\[k\]$/, hottest);
      // One thread asleep ~all the time: about 1 s (in µs) in total, a little less while it spins.
      const total = lines.reduce((a, [, n]) => a + n, 0);
      assert.ok(total > 0.5e6 && total < 1.3e6, `${total} us`);
    });
  });

  describe('as commands', function () {
    for (const name of ['profile', 'offcputime']) {
      it(`${name} without privileges: one line naming the cause and the hint, no stack trace`, function () {
        const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all',
          process.execPath, example(name), '1'], { encoding: 'utf8' });
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`^${name}: .*EPERM.*this process may not use BPF: run as root, or with CAP_BPF`));
        assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      });

      it(`${name}: Ctrl-C ends the run, prints the stacks seen so far and exits 0`, async function () {
        // Something on a CPU meanwhile: on an idle machine half a second
        // at 99 Hz may sample only the idle task, which the tools leave out.
        const busy = spawn(process.execPath, ['-e', 'const end = Date.now() + 60_000; while (Date.now() < end);'], { stdio: 'ignore' });
        const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
          const child = spawn(process.execPath, [example(name), '-f'], { stdio: ['ignore', 'pipe', 'pipe'] });
          let stdout = '';
          let stderr = '';
          let sent = false;
          const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} never got ready: ${stderr}`)); }, 100_000);
          child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
          child.stderr.on('data', (d: Buffer) => {
            stderr += d.toString();
            // Some activity to see, then one Ctrl-C (a second one would end it at once).
            if (!sent && /Hit Ctrl-C to end\.\n/.test(stderr)) {
              sent = true;
              setTimeout(() => child.kill('SIGINT'), 500);
            }
          });
          child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
        }).finally(() => busy.kill('SIGKILL'));
        assert.equal(r.code, 0, r.stderr);
        assert.ok(folded(r.stdout).length > 0, r.stdout + r.stderr);
        assert.match(r.stderr, /\d+ (samples|us off CPU) in \d+ stacks\n$/);
      });
    }
  });
});
