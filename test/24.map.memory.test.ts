// map.memory(): BPF_F_MMAPABLE arrays and data sections as memory shared
// with the programs. A program's writes are read through the view with no
// call into the library; a write through the view is what a program reads.
// After close() the views are empty (they throw or read nothing) and the
// pages are unmapped once collected: never a crash.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import { BpfError, BpfMap, BpfObject } from '../ts/index.js';
import { obj, throwsWith } from './helpers.js';

// The programs are socket filters: test runs take a frame (its bytes do not matter).
const FRAME = Buffer.alloc(64);

const BPF_F_MMAPABLE = 1 << 10;
const LE = true; // x86_64, arm64: the tests run little-endian

// Mappings of BPF maps in this process (/proc/self/maps names them).
const bpfMappings = (): number => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('bpf-map')).length;
const gc = (globalThis as { gc?: () => void }).gc;

describe('map: memory() of mmapable arrays and data sections', function () {
  let o: BpfObject;
  let shared: BpfMap<number, bigint>;
  beforeEach(() => {
    o = new BpfObject(obj('mapfast_test'));
    o.load();
    shared = o.map('shared') as BpfMap<number, bigint>;
  });
  afterEach(() => o.close());
  const run = (name: string): void => assert.equal(o.program(name).testRun({ data: FRAME }).retval, 0);

  it('reads what a program wrote, live: the same view sees each new write', function () {
    const dv = shared.memory();
    assert.equal(dv.byteLength, 16 * 8);
    for (let i = 0; i < 16; i++) assert.equal(dv.getBigUint64(i * 8, LE), 0n);
    run('fill');
    for (let i = 0; i < 16; i++) assert.equal(dv.getBigUint64(i * 8, LE), BigInt(0x1000 + i));
    // typed arrays over the same memory
    const u64 = new BigUint64Array(dv.buffer, dv.byteOffset, 16);
    assert.equal(u64[15], 0x100fn);
    // and the kernel's own lookup agrees
    assert.equal(shared.lookup(15), 0x100fn);
    assert.equal(shared.memory().buffer, dv.buffer, 'one mapping per map');
  });

  it('a write through the view is what a program reads', function () {
    const u64 = new BigUint64Array(shared.memory().buffer);
    u64[0] = 21n;
    run('echo');
    assert.equal(u64[1], 42n, 'the program doubled what we wrote, in our view');
    assert.equal((o.map('seen') as BpfMap<number, bigint>).lookup(0), 21n);
    // update() through the syscall lands in the same memory
    shared.update(3, 99n);
    assert.equal(u64[3], 99n);
  });

  it('.bss as memory: the program\'s counter, and our write it counts on from', function () {
    const bss = [...o.maps.values()].find((m) => m.internal && m.name.endsWith('.bss'))!;
    const dv = bss.memory();
    run('fill');
    run('fill');
    assert.equal(dv.getBigUint64(0, LE), 2n); // ticks, the only .bss variable
    assert.equal(o.bss.ticks, 2n);
    dv.setBigUint64(0, 100n, LE);
    run('fill');
    assert.equal(o.bss.ticks, 101n);
  });

  it('close() empties every view (they throw or read nothing); the pages go when collected', async function () {
    const before = bpfMappings();
    let dv: DataView | undefined = shared.memory();
    const u64 = new BigUint64Array(dv.buffer);
    run('fill');
    assert.equal(u64[2], 0x1002n);
    assert.equal(bpfMappings(), before + 1);
    o.close();
    assert.throws(() => dv!.getBigUint64(0, LE), TypeError);
    assert.equal(u64.length, 0);
    assert.equal(u64[2], undefined);
    throwsWith(() => shared.memory(), { code: 'ERR_INVALID_STATE' }, TypeError);
    if (gc) {
      dv = undefined;
      for (let i = 0; i < 10 && bpfMappings() > before; i++) {
        gc();
        await tick();
      }
      assert.equal(bpfMappings(), before, 'unmapped once collected');
    }
  });

  it('a standalone map: close() of the map (not an object) empties the views too', function () {
    const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1000, flags: BPF_F_MMAPABLE });
    const u32 = new Uint32Array(m.memory().buffer);
    assert.equal(u32.length, 2000, 'values 4 bytes wide are 8 apart: 1000 * 8 bytes');
    m.update(999, 7);
    assert.equal(u32[999 * 2], 7);
    u32[10] = 5;
    assert.equal(m.lookup(5)!.readUInt32LE(0), 5);
    m.close();
    assert.equal(u32.length, 0);
    m.close();
  });

  it('refused: maps that are not mmapable arrays, before load, read-only maps', function () {
    throwsWith(() => o.map('slots').memory(), { code: 'ERR_INVALID_STATE', message: /without BPF_F_MMAPABLE/ }, TypeError);
    throwsWith(() => o.map('counts').memory(), { code: 'ERR_INVALID_STATE', message: /is a hash/ }, TypeError);
    const g = new BpfObject(obj('globals_test'));
    try {
      const rodata = [...g.maps.values()].find((m) => m.name.endsWith('.rodata'))!;
      throwsWith(() => rodata.memory(), { code: 'ERR_INVALID_STATE', message: /load\(\)/ }, TypeError);
      g.load();
      throwsWith(() => rodata.memory(), { code: 'ERR_INVALID_STATE', message: /read-only/ }, TypeError);
    } finally {
      g.close();
    }
    // frozen: the kernel refuses a writable mapping; mapped: it refuses to freeze
    using frozen = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4, flags: BPF_F_MMAPABLE });
    frozen.freeze();
    throwsWith(() => frozen.memory(), { code: 'EPERM', op: 'mmap' }, BpfError);
    using mapped = BpfMap.create({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 4, flags: BPF_F_MMAPABLE });
    mapped.memory();
    throwsWith(() => mapped.freeze(), { code: 'EBUSY', op: 'bpf_map_freeze' }, BpfError);
  });
});
