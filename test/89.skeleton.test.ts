// Generated skeletons: the committed ones are what the generator writes
// from the committed objects, they compile under --strict with no `any`
// (the project's tsc compiles them), and they drive real programs.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { generateSkeleton } from '../ts/index.js';
import { GlobalsTestSkeleton } from '../examples/globals_test.skel.js';
import { ROOT, ensureTracefs } from './helpers.js';

const EXAMPLES = path.join(ROOT, 'examples');

describe('gen skeleton', function () {
  const committed = readdirSync(EXAMPLES).filter((f) => f.endsWith('.skel.ts'));

  it('there are skeletons for the examples', function () {
    assert.deepEqual(committed.sort(), ['execsnoop.skel.ts', 'globals_test.skel.ts', 'runqlat.skel.ts']);
  });

  for (const file of committed) {
    it(`${file} is up to date with its object (npm run gen:skeletons regenerates it)`, function () {
      const base = file.replace(/\.skel\.ts$/, '');
      const fresh = generateSkeleton(path.join(ROOT, 'bpf', `${base}.bpf.o`), {
        importFrom: '../ts/index.js', objectPath: `../../bpf/${base}.bpf.o`,
      });
      assert.equal(readFileSync(path.join(EXAMPLES, file), 'utf8'), fresh);
      assert.doesNotMatch(fresh, /\bany\b/);
    });
  }

  it('a skeleton types globals, maps and programs, and runs the program', function () {
    ensureTracefs();
    const skel = new GlobalsTestSkeleton();
    try {
      skel.rodata.targ_tgid = process.pid; // number, checked by tsc
      skel.rodata.step = 2;
      skel.load();
      skel.attach();
      for (let i = 0; i < 4; i++) void process.ppid;
      const calls: bigint = skel.bss.calls;
      assert.equal(calls, 4n);
      assert.equal(skel.data.data_counter, 5 + 4 * 2);
      assert.deepEqual(skel.data.pair, { a: 1, b: 2 });
      assert.equal(skel.programs.count_getppid.type, 'tracepoint');
    } finally {
      skel.close();
    }
  });

  it('the CLI writes a skeleton, also with the object embedded, that compiles under tsc --strict', function () {
    // tsc takes seconds here, minutes in a VM without KVM (RUN_IN_VM: a CPU about 20 times slower)
    this.timeout(process.env.RUN_IN_VM ? 600_000 : 60_000);
    const dir = mkdtempSync(path.join(tmpdir(), 'lbn-skel-'));
    try {
      const cli = path.join(ROOT, 'dist', 'ts', 'cli.js');
      const lib = path.join(ROOT, 'ts', 'index.js').replace(/\.js$/, '.js');
      for (const [obj, extra] of [['runqlat', ['--embed']], ['execsnoop', []], ['types_test', []]] as const) {
        execFileSync(process.execPath, [cli, 'gen', 'skeleton', path.join(ROOT, 'bpf', `${obj}.bpf.o`), '-o', path.join(dir, `${obj}.skel.ts`),
          '--import', lib, ...extra]);
      }
      const embedded = readFileSync(path.join(dir, 'runqlat.skel.ts'), 'utf8');
      assert.match(embedded, /const IMAGE = "[A-Za-z0-9+/=]+";/);
      assert.match(embedded, /BpfObject\.fromBuffer\(Buffer\.from\(IMAGE, 'base64'\)/);
      writeFileSync(path.join(dir, 'use.ts'), [
        `import { RunqlatSkeleton, type Hist } from './runqlat.skel.js';`,
        `import { ExecsnoopSkeleton } from './execsnoop.skel.js';`,
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
        `export { h, t, raw, e, d, popped, perCpu, perCpuRaw, pairs, pairsRaw, len, b2, cpus };`,
      ].join('\n'));
      const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      execFileSync(process.execPath, [tsc, '--strict', '--noEmit', '--skipLibCheck', '--target', 'ES2022', '--module', 'node16',
        '--moduleResolution', 'node16', '--types', 'node', '--lib', 'ES2022,ESNext.Disposable', '--noUnusedLocals', path.join(dir, 'use.ts')],
      { encoding: 'utf8', cwd: ROOT });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad input: not an object file', function () {
    assert.throws(() => generateSkeleton('/nonexistent.bpf.o'), { name: 'BpfError', code: 'ENOENT' });
  });
});
