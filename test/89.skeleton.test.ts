// Generated skeletons: the committed ones are what the generator writes
// from the committed objects, they compile under --strict with no `any`
// (the project's tsc compiles them), and they drive real programs.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
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
