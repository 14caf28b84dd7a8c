// Global variables: .rodata configuration set before load changes what the
// program does; .bss/.data (and a custom .data.* section) are read and
// written live after load, through the memory the program uses.
import { strict as assert } from 'node:assert';
import { BpfObject } from '../ts/index.js';
import { ensureTracefs, obj } from './helpers.js';

describe('globals: .rodata, .data, .bss, .data.*', function () {
  let o: BpfObject;
  before(() => ensureTracefs());
  beforeEach(() => {
    o = new BpfObject(obj('globals_test'));
  });
  afterEach(() => o.close());

  const getppid = (n: number): void => {
    for (let i = 0; i < n; i++) void process.ppid;
  };

  it('reads the initial values of every section, typed from BTF', function () {
    assert.deepEqual({ ...o.rodata }, { targ_tgid: 0, label: 'none', step: 1 });
    assert.deepEqual({ ...o.bss }, { calls: 0n, last_tgid: 0 });
    assert.deepEqual({ ...o.data }, { data_counter: 5, pair: { a: 1, b: 2 } });
    assert.deepEqual({ ...o.globals('.data.custom') }, { custom_hits: 100n });
  });

  it('rodata set before load changes the program: a pid filter and a step', function () {
    o.rodata.targ_tgid = process.pid;
    o.rodata.step = 3;
    o.load();
    o.attach();
    getppid(10);
    assert.equal(o.bss.calls, 10n, 'only this process is counted');
    assert.equal(o.bss.last_tgid, process.pid);
    assert.equal(o.data.data_counter, 5 + 10 * 3);
    assert.equal(o.globals('.data.custom').custom_hits, 110n);
  });

  it('bss and data are live: reads see the program\'s writes, writes reach the program', function () {
    o.rodata.targ_tgid = process.pid;
    o.load();
    o.attach();
    const bss = o.bss;
    getppid(3);
    assert.equal(bss.calls, 3n);
    bss.calls = 1000n;
    getppid(2);
    assert.equal(bss.calls, 1002n);
    o.data.pair = { a: 7 };
    assert.deepEqual(o.data.pair, { a: 7, b: 0 });
  });

  it('bad input: unknown global, out of range, string too long, rodata after load; nothing written', function () {
    assert.throws(() => { o.rodata.nope = 1; }, { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /nope.*targ_tgid, label, step/ });
    assert.throws(() => { o.rodata.step = 40000; }, { name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: /^\.rodata step must be/ });
    assert.throws(() => { o.rodata.label = 'much too long'; }, { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => { o.data.pair = { a: 1, c: 2 }; }, { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    assert.deepEqual({ ...o.rodata }, { targ_tgid: 0, label: 'none', step: 1 }, 'nothing was written');
    assert.throws(() => o.globals('.nope'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /\.rodata/ });
    o.load();
    assert.throws(() => { o.rodata.step = 2; }, { name: 'TypeError', code: 'ERR_INVALID_STATE', message: /read-only once loaded/ });
    assert.equal(o.rodata.step, 1);
    const bss = o.bss;
    o.close();
    assert.throws(() => bss.calls, { name: 'TypeError', code: 'ERR_INVALID_STATE' });
  });
});
