// Generated skeletons: the committed ones are what the generator writes
// from the committed objects, they compile under --strict with no `any`
// (the project's tsc compiles them), and they drive real programs.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { generateSkeleton } from '../ts/index.js';
import { GlobalsTestSkeleton } from '../examples/globals_test.skel.js';
import { ExecsnoopSkeleton, type Event } from '../examples/execsnoop.skel.js';
import { ROOT, ensureTracefs, obj } from './helpers.js';

const EXAMPLES = path.join(ROOT, 'examples');

describe('gen skeleton', function () {
  const committed = readdirSync(EXAMPLES).filter((f) => f.endsWith('.skel.ts'));

  it('there are skeletons for the examples', function () {
    assert.deepEqual(committed.sort(), ['execsnoop.skel.ts', 'globals_test.skel.ts', 'runqlat.skel.ts']);
  });

  for (const file of committed) {
    it(`${file} is up to date with its object (npm run gen:skeletons regenerates it)`, function () {
      const base = file.replace(/\.skel\.ts$/, '');
      // as npm run gen:skeletons makes them: execsnoop's records typed from its types file
      const typed = base === 'execsnoop' ? { types: path.join(ROOT, 'bpf', 'execsnoop_types.bpf.o'), events: { events: 'struct event' } } : {};
      const fresh = generateSkeleton(path.join(ROOT, 'bpf', `${base}.bpf.o`), {
        importFrom: '../ts/index.js', objectPath: `../../bpf/${base}.bpf.o`, ...typed,
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

  it('--types/--event: the committed execsnoop skeleton streams its events typed by execsnoop_types.bpf.o, decoded from the kernel', async function () {
    ensureTracefs();
    const skel = new ExecsnoopSkeleton().load();
    try {
      const rb = skel.streamEvents();
      skel.attach();
      const tag = `skel-${process.pid}`;
      const ok = spawnSync('/bin/echo', [tag], { encoding: 'utf8' });
      assert.equal(ok.stdout, `${tag}\n`);
      let found: Event | undefined;
      for await (const e of rb) {
        if (e.pid === ok.pid) {
          found = e;
          break;
        }
      }
      assert.deepEqual([found!.ppid, found!.comm, found!.retval, found!.args_count, found!.args, found!.args_size],
        [process.pid, 'echo', 0, 2, '/bin/echo', '/bin/echo'.length + tag.length + 2]);
    } finally {
      skel.close();
    }
  });

  it('--event: a map that is not there or carries no stream, a type found nowhere, are errors naming them', function () {
    const o = path.join(ROOT, 'bpf', 'execsnoop.bpf.o');
    const types = path.join(ROOT, 'bpf', 'execsnoop_types.bpf.o');
    assert.throws(() => generateSkeleton(o, { types, events: { nope: 'struct event' } }), { code: 'ERR_INVALID_ARG_VALUE', message: /no map named 'nope' \(there are: blank, execs, events\)/ });
    assert.throws(() => generateSkeleton(o, { types, events: { execs: 'struct event' } }), { code: 'ERR_INVALID_ARG_VALUE', message: /a hash map carries no event stream/ });
    assert.throws(() => generateSkeleton(o, { events: { events: 'struct event' } }), { code: 'ERR_INVALID_ARG_VALUE', message: /no type named 'struct event' in the object's BTF \(a type only in a header needs --types\)/ });
    assert.throws(() => generateSkeleton(o, { types, events: { events: 'struct other' } }), { code: 'ERR_INVALID_ARG_VALUE', message: /no type named 'struct other' in execsnoop_types\.bpf\.o or the object's BTF/ });
    assert.throws(() => generateSkeleton(o, { types: obj('ring_test').replace('ring_test.bpf.o', 'Makefile') }), { name: 'BpfError', code: 'LIBBPF_ERRNO__FORMAT' });
  });

  it('bad input: not an object file', function () {
    assert.throws(() => generateSkeleton('/nonexistent.bpf.o'), { name: 'BpfError', code: 'ENOENT' });
  });
});
