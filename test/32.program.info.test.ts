// Introspection: prog.info(), map.info(), link.info(), xlatedInstructions(),
// enableStats(), checked against what the kernel and bpftool say.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { BpfLink, BpfMap, BpfObject, BpfProgram, asm, enableStats } from '../ts/index.js';
import { bpftool, ensureTracefs, obj, throwsWith } from './helpers.js';
import { kernelAtLeast, scratchCgroup } from './info_helpers.js';

interface ProgShow {
  id: number; type: string; name: string; tag: string; gpl_compatible: boolean; loaded_at: number; uid: number;
  bytes_xlated: number; jited: boolean; bytes_jited: number; map_ids: number[]; btf_id?: number;
  run_time_ns?: number; run_cnt?: number; recursion_misses?: number; verified_insns?: number;
}

describe('introspection: info()', function () {
  let o: BpfObject;
  before(() => {
    ensureTracefs();
    o = new BpfObject(obj('info_test')).load();
  });
  after(() => o.close());

  it('prog.info() says what bpftool prog show says (id, name, tag, type, map ids, sizes, uid, btf id)', function () {
    const p = o.program('info_count');
    const info = p.info();
    const shown = bpftool<ProgShow>('prog', 'show', 'id', String(info.id));
    assert.equal(info.id, p.id);
    assert.equal(info.name, shown.name);
    assert.equal(info.name, 'info_count');
    assert.equal(info.tag, shown.tag);
    assert.equal(info.type, 'socket_filter');
    assert.equal(shown.type, 'socket_filter');
    assert.deepEqual([...info.mapIds].sort((a, b) => a - b), [...shown.map_ids].sort((a, b) => a - b));
    assert.ok(info.mapIds.includes(o.map('info_runs').id) && info.mapIds.includes(o.map('info_other').id), `${info.mapIds}`);
    assert.equal(info.xlatedSize, shown.bytes_xlated);
    assert.equal(info.jitedSize, shown.bytes_jited ?? 0);
    assert.equal(info.uid, shown.uid);
    assert.equal(info.uid, process.getuid?.());
    assert.equal(info.gplCompatible, shown.gpl_compatible);
    assert.equal(info.btfId, shown.btf_id ?? 0);
    assert.ok(info.btfId > 0, 'the object has BTF');
    assert.equal(typeof info.runCount, 'bigint');
    assert.equal(typeof info.runTimeNs, 'bigint');
    if (shown.verified_insns !== undefined) assert.equal(info.verifiedInsns, shown.verified_insns);
    if (shown.recursion_misses !== undefined) assert.equal(info.recursionMisses, BigInt(shown.recursion_misses));
  });

  it('loadTime is the wall-clock time of the load (bpftool loaded_at, in s) and loadTimeNs the boot-relative ns', function () {
    const info = o.program('info_count').info();
    const shown = bpftool<ProgShow>('prog', 'show', 'id', String(info.id));
    assert.ok(info.loadTime instanceof Date);
    assert.ok(Math.abs(info.loadTime.getTime() / 1000 - shown.loaded_at) <= 1, `${info.loadTime.toISOString()} vs ${shown.loaded_at}`);
    assert.ok(Math.abs(info.loadTime.getTime() - Date.now()) < 120_000);
    assert.ok(info.loadTimeNs > 0n);
  });

  it('verifiedInsns and recursionMisses: numbers where the kernel reports them (5.16, 5.12), undefined before', function () {
    const info = o.program('info_count').info();
    const shown = bpftool<ProgShow>('prog', 'show', 'id', String(info.id));
    // bpftool 7.1 prints neither; the kernel version says whether they must be there.
    if (shown.verified_insns !== undefined) assert.equal(info.verifiedInsns, shown.verified_insns);
    assert.equal(info.verifiedInsns !== undefined, kernelAtLeast(5, 16));
    assert.equal(info.recursionMisses !== undefined, kernelAtLeast(5, 12));
    if (info.verifiedInsns !== undefined) assert.ok(info.verifiedInsns > 0 && info.verifiedInsns < 1000);
    if (info.recursionMisses !== undefined) assert.equal(info.recursionMisses, 0n);
  });

  it('xlatedInstructions() decodes xlated size / 8 slots, with the map loads by id and an exit', function () {
    const p = o.program('info_count');
    const info = p.info();
    const insns = p.xlatedInstructions();
    const slots = insns.reduce((n, i) => n + i.slots, 0);
    assert.equal(slots, info.xlatedSize / 8);
    assert.equal(Buffer.concat(insns.map((i) => i.bytes)).length, info.xlatedSize);
    assert.ok(insns.some((i) => i.text === 'exit'));
    // array lookups are inlined by the verifier; hash ones stay a map load + call
    const mapLoads = insns.filter((i) => i.slots === 2 && (i.bytes[1] >> 4) === asm.PSEUDO_MAP_FD).map((i) => i.bytes.readInt32LE(4));
    assert.ok(mapLoads.includes(o.map('info_other').id), `map loads ${mapLoads} should include info_other's id`);
    assert.ok(insns.some((i) => i.bytes[0] === (asm.JMP | asm.CALL)));
  });

  it('a hand-written program reads back as the instructions it was loaded with', function () {
    const src = [asm.mov64Imm(asm.R0, 7), asm.alu64Imm(asm.ADD, asm.R0, 3), asm.exit()];
    using p = BpfProgram.load({ type: 'socket_filter', insns: src });
    const back = p.xlatedInstructions();
    assert.deepEqual(back.map((i) => i.text), ['r0 = 7', 'r0 += 3', 'exit']);
    assert.deepEqual(Buffer.concat(back.map((i) => i.bytes)), asm.assemble(src));
    assert.equal(p.jitedBytes().length, p.info().jitedSize);
  });

  it('enableStats(): runCount grows by exactly the number of test runs while on, and not after close()', function () {
    const p = o.program('info_count');
    const data = Buffer.alloc(64);
    {
      using stats = enableStats();
      assert.equal(stats.enabled, true);
      const before = p.info();
      p.testRun({ data, repeat: 5 });
      p.testRun({ data });
      const after = p.info();
      assert.equal(after.runCount - before.runCount, 6n);
      assert.ok(after.runTimeNs >= before.runTimeNs);
      const shown = bpftool<ProgShow>('prog', 'show', 'id', String(after.id));
      assert.equal(BigInt(shown.run_cnt ?? -1), after.runCount);
      stats.close();
      stats.close();
      assert.equal(stats.enabled, false);
    }
    // Another process may hold stats on (bpftool prog profile, another test
    // run); only when nobody does must the count stand still.
    const c0 = p.info().runCount;
    p.testRun({ data, repeat: 3 });
    const c1 = p.info().runCount;
    assert.ok(c1 - c0 === 0n || c1 - c0 === 3n);
  });

  it('map.info() says what bpftool map show says', function () {
    for (const name of ['info_runs', 'info_other']) {
      const m = o.map(name);
      const info = m.info();
      const shown = bpftool<{ id: number; type: string; name: string; bytes_key: number; bytes_value: number; max_entries: number; flags: number; btf_id?: number }>(
        'map', 'show', 'id', String(m.id));
      assert.equal(info.id, shown.id);
      assert.equal(info.name, shown.name);
      assert.equal(info.type, shown.type);
      assert.equal(info.keySize, shown.bytes_key);
      assert.equal(info.valueSize, shown.bytes_value);
      assert.equal(info.maxEntries, shown.max_entries);
      assert.equal(info.flags, shown.flags);
      assert.equal(info.btfId, shown.btf_id ?? 0);
    }
    using m = BpfMap.create({ type: 'hash', keySize: 4, valueSize: 8, maxEntries: 3, name: 'info_made' });
    const info = m.info();
    assert.deepEqual([info.type, info.name, info.keySize, info.valueSize, info.maxEntries], ['hash', 'info_made', 4, 8, 3]);
  });

  it('info() of a closed program, map or link throws ERR_INVALID_STATE; before load() too', function () {
    using p = BpfProgram.load({ type: 'socket_filter', insns: [asm.mov64Imm(asm.R0, 0), asm.exit()] });
    p.close();
    throwsWith(() => p.info(), { code: 'ERR_INVALID_STATE' }, TypeError);
    throwsWith(() => p.xlatedInstructions(), { code: 'ERR_INVALID_STATE' }, TypeError);
    const m = BpfMap.create({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 });
    m.close();
    throwsWith(() => m.info(), { code: 'ERR_INVALID_STATE' }, TypeError);
    using opened = new BpfObject(obj('info_test'));
    throwsWith(() => opened.program('info_count').info(), { code: 'ERR_INVALID_STATE' }, TypeError);
    throwsWith(() => opened.map('info_runs').info(), { code: 'ERR_INVALID_STATE' }, TypeError);
    const link = o.program('info_raw_tp').attachRawTracepoint('sys_enter');
    link.detach();
    throwsWith(() => link.info(), { code: 'ERR_INVALID_STATE' }, TypeError);
    throwsWith(() => link.forceDetach(), { code: 'ERR_INVALID_STATE' }, TypeError);
  });

  it('link.info() of a raw tracepoint link: type, program, tracepoint name (as bpftool link show)', function () {
    using link = o.program('info_raw_tp').attachRawTracepoint('sys_enter');
    const info = link.info();
    const shown = bpftool<{ id: number; type: string; prog_id: number; tp_name?: string }>('link', 'show', 'id', String(info.id));
    assert.equal(info.type, 'raw_tracepoint');
    assert.equal(shown.type, 'raw_tracepoint');
    assert.equal(info.progId, o.program('info_raw_tp').id);
    assert.equal(info.progId, shown.prog_id);
    assert.equal(info.target, 'sys_enter');
    assert.equal(shown.tp_name, 'sys_enter');
  });

  it('link.info() of a tracepoint link (perf_event) names the tracepoint where the kernel says it (6.6+)', function () {
    using link = o.program('info_printk').attach();
    const info = link.info();
    if (link.type === 'perf_event_legacy') {
      assert.equal(info.id, 0);
      return;
    }
    assert.equal(info.type, 'perf_event');
    assert.equal(info.progId, o.program('info_printk').id);
    const shown = bpftool<{ id: number; type: string; prog_id: number }>('link', 'show', 'id', String(info.id));
    assert.equal(shown.prog_id, info.progId);
    if (info.perfEventType !== undefined) {
      assert.equal(info.perfEventType, 'tracepoint');
      assert.equal(info.target, 'sys_enter_getppid');
    }
  });

  it('BpfLink.fromId() opens a link by id; detach() of it releases only that fd', function () {
    using link = o.program('info_raw_tp').attachRawTracepoint('sys_enter');
    const id = link.info().id;
    const other = BpfLink.fromId(id);
    assert.equal(other.info().id, id);
    assert.equal(other.info().progId, link.info().progId);
    other.close();
    assert.equal(link.info().id, id); // still there
    bpftool('link', 'show', 'id', String(id));
  });

  it('forceDetach(): the link shows detached while its fd is still open', function () {
    const cg = scratchCgroup('force');
    try {
      forceDetachIn(cg.dir);
    } finally {
      cg.remove();
    }
  });

  function forceDetachIn(dir: string): void {
    using link = o.program('info_cgroup').attachCgroup(dir);
    const before = link.info();
    assert.equal(before.type, 'cgroup');
    assert.ok((before.cgroupId ?? 0n) > 0n);
    assert.equal(before.attachType, 'cgroup_inet_egress');
    link.forceDetach();
    const later = link.info();
    assert.equal(later.id, before.id);
    // a detached cgroup link reports no cgroup (id 0), and is gone from the cgroup's programs
    assert.equal(later.cgroupId ?? 0n, 0n);
    const shown = bpftool<{ id: number; cgroup_id?: number }>('link', 'show', 'id', String(before.id));
    assert.equal(shown.cgroup_id ?? 0, 0);
    // bpftool prints nothing at all for a cgroup without programs
    assert.match(execFileSync('bpftool', ['-j', 'cgroup', 'show', dir], { encoding: 'utf8' }).trim(), /^(\[\])?$/);
  }
});
