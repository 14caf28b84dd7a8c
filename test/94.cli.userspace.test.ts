// The command lines in user space alone: --help, bad arguments refused
// before anything is loaded, and the skeleton generator's output checked
// by tsc --strict. Nothing here reaches the kernel, so CI runs this file on
// the host only (.ci/run), as it does the package tests: in its emulated
// VMs, about 20 times slower, these node and tsc start-ups took five to six
// minutes of each kernel's 30-minute budget and tested no kernel.
// The same tools against the kernel: test/93 (profilers), test/96
// (examples), test/89 (skeletons).
import * as assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { libbpfVersion } from '../ts/index.js';
import { ROOT } from './helpers.js';

/** Runs a script of ours under this node to its end. */
function runScript(file: string, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** Runs one of examples/ (built into dist/examples). */
const run = (name: string, args: readonly string[]): ReturnType<typeof runScript> => runScript(path.join(ROOT, 'dist', 'examples', `${name}.js`), args);

const TOOLS: { name: string; bad: string[]; badMessage: RegExp }[] = [
  { name: 'sockstat', bad: ['--seconds', 'abc'], badMessage: /^sockstat: invalid --seconds 'abc'/ },
  { name: 'runqlat', bad: ['1', 'x'], badMessage: /^runqlat: invalid count 'x'/ },
  { name: 'uprobe-node', bad: ['--seconds', '0'], badMessage: /^uprobe-node: invalid --seconds '0'/ },
  { name: 'execsnoop', bad: ['--count', '1.5'], badMessage: /^execsnoop: invalid --count '1.5': expected a whole number/ },
];

describe('examples as command-line tools: arguments', function () {
  this.timeout(40_000);
  for (const t of TOOLS) {
    describe(t.name, function () {
      it('--help prints usage, options and examples, and exits 0', function () {
        const r = run(t.name, ['--help']);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: ${t.name} \\[options\\]`));
        assert.match(r.stdout, /\n {2}-h, --help +show this help and exit\n/);
        assert.match(r.stdout, /\nExamples:\n {2}\S/);
        assert.equal(r.stderr, '');
      });

      it('a bad value or an unknown option is one line and exit status 2', function () {
        for (const [args, message] of [[t.bad, t.badMessage], [['--bogus'], new RegExp(`^${t.name}: Unknown option '--bogus'`)]] as const) {
          const r = run(t.name, args);
          assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stdout, '');
          const lines = r.stderr.trim().split('\n');
          assert.match(lines[0]!, message);
          assert.equal(lines[1], `Try '${t.name} --help' for more information.`);
          assert.equal(lines.length, 2);
        }
      });
    });
  }
});

describe('profile and offcputime: arguments', function () {
  this.timeout(150_000);
  for (const name of ['profile', 'offcputime']) {
    it(`${name} --help prints usage and examples; a bad value is one line and exit status 2`, function () {
      const help = run(name, ['--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, new RegExp(`^Usage: ${name} \\[options\\] \\[duration\\]\\n`));
      assert.match(help.stdout, /--pprof VALUE +write a gzipped pprof profile/);
      assert.match(help.stdout, /--html VALUE +write a self-contained flame graph page/);
      // (Few cases: each is a node process, seconds apiece in CI's emulated VMs.)
      for (const [args, msg] of [
        [['-p', 'abc'], `invalid --pid 'abc'`],
        [['-U', '-K', '1'], '--user-stacks-only and --kernel-stacks-only exclude each other'],
      ] as const) {
        const r = run(name, args);
        assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
        const lines = r.stderr.trimEnd().split('\n');
        assert.ok(lines[0]!.startsWith(`${name}: ${msg}`), r.stderr);
        assert.deepEqual(lines.slice(1), [`Try '${name} --help' for more information.`]);
        assert.equal(r.stdout, '');
      }
    });
  }

  it('a frequency out of range, a pid that does not exist, an output file that cannot be written: refused before loading', function () {
    for (const [name, args, msg] of [
      ['profile', ['-F', '0', '1'], /^profile: invalid --frequency '0': expected a number from 1 to 100000\n/],
      ['profile', ['-p', String(0x3fff_fff0), '1'], /^profile: no process with pid 1073741808\n/],
      ['offcputime', ['--html', '/nonexistent/dir/x.html', '1'], /^offcputime: cannot write \/nonexistent\/dir\/x\.html: ENOENT\n/],
    ] as const) {
      const r = run(name, args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, msg);
    }
  });
});

describe('the libbpf-node command', function () {
  this.timeout(180_000); // a dozen node processes: minutes under emulation
  const cli = (...args: string[]): ReturnType<typeof runScript> => runScript(path.join(ROOT, 'dist', 'ts', 'cli.js'), args);

  it('--help and -h print the commands on stdout, exit 0', function () {
    for (const flag of ['--help', '-h']) {
      const r = cli(flag);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /^Usage: libbpf-node COMMAND \[options\]\n[^]*gen skeleton OBJECT\.bpf\.o/);
      assert.equal(r.stderr, '');
    }
  });

  it('--version names the package version and the libbpf in use', function () {
    const r = cli('--version');
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout, `libbpf-node ${pkg.version} (libbpf ${libbpfVersion})\n`);
  });

  it('gen skeleton --help is the command\'s help, exit 0 (not a file named --help)', function () {
    const r = cli('gen', 'skeleton', '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: libbpf-node gen skeleton OBJECT\.bpf\.o \[options\]/);
    assert.match(r.stdout, /--module esm\|cjs/);
  });

  it('misuse is exit 2 with one line and a pointer to --help; a failure is exit 1', function () {
    for (const args of [[], ['--bogus'], ['gen'], ['gen', 'skeleton'], ['gen', 'skeleton', 'a.o', '--module', 'amd'], ['gen', 'skeleton', 'a.o', '--event', 'x']]) {
      const r = cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^libbpf-node: .*\nTry 'libbpf-node --help'\.\n$/);
    }
    const r = cli('gen', 'skeleton', '/nonexistent.bpf.o');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^libbpf-node: bpf_object__open_file\(\/nonexistent\.bpf\.o\) failed: ENOENT/);
  });
});

describe('gen skeleton: the CLI', function () {
  it('the CLI writes a skeleton, also with the object embedded, that compiles under tsc --strict', function () {
    // tsc takes seconds here, minutes in a VM without KVM (RUN_IN_VM: a CPU about 20 times slower)
    this.timeout(process.env.RUN_IN_VM ? 600_000 : 60_000);
    const dir = mkdtempSync(path.join(tmpdir(), 'lbn-skel-'));
    try {
      const cli = path.join(ROOT, 'dist', 'ts', 'cli.js');
      const lib = path.join(ROOT, 'ts', 'index.js');
      for (const [obj, extra] of [['runqlat', ['--embed']], ['execsnoop', ['--types', path.join(ROOT, 'bpf', 'execsnoop_types.bpf.o'), '--event', 'events=struct event']],
        ['types_test', []]] as const) {
        execFileSync(process.execPath, [cli, 'gen', 'skeleton', path.join(ROOT, 'bpf', `${obj}.bpf.o`), '-o', path.join(dir, `${obj}.skel.ts`),
          '--import', lib, ...extra]);
      }
      const embedded = readFileSync(path.join(dir, 'runqlat.skel.ts'), 'utf8');
      assert.match(embedded, /const IMAGE = "[A-Za-z0-9+/=]+";/);
      assert.match(embedded, /BpfObject\.fromBuffer\(Buffer\.from\(IMAGE, 'base64'\)/);
      writeFileSync(path.join(dir, 'use.ts'), [
        `import { RunqlatSkeleton, type Hist } from './runqlat.skel.js';`,
        `import { ExecsnoopSkeleton, type Event } from './execsnoop.skel.js';`,
        `import type { RingBuffer } from ${JSON.stringify(lib)};`,
        `const stream: RingBuffer<Event> = new ExecsnoopSkeleton().streamEvents({ highWaterMark: 16 });`,
        `void (async () => { for await (const ev of stream) { const c: string = ev.comm; const n: number = ev.args_count; void [c, n]; } })();`,
        `// @ts-expect-error the records are Events, not Buffers`,
        `const wrong: RingBuffer<Buffer> = new ExecsnoopSkeleton().streamEvents();`,
        `// @ts-expect-error the type is the skeleton's to give`,
        `new ExecsnoopSkeleton().streamEvents({ type: 'struct other' });`,
        `const r = new RunqlatSkeleton();`,
        `import { TypesTestSkeleton, type Inner, type Buffer2, type PerCpu2 } from './types_test.skel.js';`,
        `const h: Hist | undefined = r.maps.hists.lookup(0);`,
        `const tt = new TypesTestSkeleton();`,
        `const popped: Inner | undefined = tt.maps.inner_queue.lookupAndDelete(null);`,
        `tt.maps.inner_stack.update(null, { a: 1 });`,
        `const perCpu: BigUint64Array[] | undefined = tt.maps.percpu_pairs.lookup(0);`,
        `const perCpuRaw: Buffer[] | undefined = tt.maps.percpu_pairs.raw.lookup(0);`,
        `const pairs: Inner[] | undefined = tt.maps.inner_pairs.lookup(0);`,
        `const pairsRaw: Buffer | undefined = tt.maps.inner_pairs.raw.lookup(0);`,
        `tt.maps.samples.update(0, { name: 'x', nested: { a: 1 } });`,
        `const len: number | undefined = tt.maps.buffers.lookup(0)?.len;`,
        `const b2: Buffer2 = { len: 1 };`,
        `const cpus: PerCpu2[] | undefined = tt.maps.per_cpus.lookup(0);`,
        `// @ts-expect-error a sample has no member 'nope'`,
        `tt.maps.samples.update(0, { nope: 1 });`,
        `const t: bigint | undefined = r.maps.start.lookup(1);`,
        `const raw: Buffer | undefined = r.maps.hists.raw.lookup(0);`,
        `const e: number = new ExecsnoopSkeleton().rodata.max_args;`,
        `const d: bigint = new ExecsnoopSkeleton().bss.dropped;`,
        `export { h, t, raw, e, d, popped, perCpu, perCpuRaw, pairs, pairsRaw, len, b2, cpus, wrong };`,
      ].join('\n'));
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      execFileSync(process.execPath, [tsc, '--strict', '--noEmit', '--skipLibCheck', '--target', 'ES2022', '--module', 'node16',
        '--moduleResolution', 'node16', '--types', 'node', '--lib', 'ES2022,ESNext.Disposable', '--noUnusedLocals', path.join(dir, 'use.ts')],
      { encoding: 'utf8', cwd: ROOT });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
