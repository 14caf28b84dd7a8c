// BTF parsing, checked type by type against bpftool's reading of the same
// bytes (bpftool btf dump -j), for every test object and for the kernel.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Btf, BpfObject } from '../ts/index.js';
import { BPF_DIR, obj } from './helpers.js';

interface ToolType {
  id: number; kind: string; name: string; size?: number; type_id?: number; nr_elems?: number; nr_bits?: number;
  bits_offset?: number; encoding?: string; vlen?: number;
  members?: { name: string; type_id: number; bits_offset: number; bitfield_size?: number }[];
  values?: { name: string; val: number }[];
  params?: { name: string; type_id: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}

function viaBpftool(file: string): ToolType[] {
  const out = execFileSync('bpftool', ['-j', 'btf', 'dump', 'file', file], { encoding: 'utf8', maxBuffer: 1 << 30 });
  return (JSON.parse(out) as { types: ToolType[] }).types;
}

// Our reading in bpftool's terms.
function compare(btf: Btf, tool: ToolType[]): void {
  assert.equal(btf.length, tool.length + 1, 'type count (ours counts void as id 0)');
  for (const t of tool) {
    const ours = btf.type(t.id);
    const where = `type ${t.id} (${t.kind} ${t.name})`;
    assert.equal(ours.kind.toUpperCase(), t.kind, where);
    assert.equal(ours.name || '(anon)', t.name, where);
    if ('size' in ours && t.size !== undefined) assert.equal(ours.size, t.size, where);
    if ('type' in ours && t.type_id !== undefined) assert.equal(ours.type, t.type_id, where);
    if (ours.kind === 'int') {
      assert.equal(ours.bits, t.nr_bits, where);
      assert.equal(ours.signed, t.encoding === 'SIGNED', where);
      assert.equal(ours.bool, t.encoding === 'BOOL', where);
    }
    if (ours.kind === 'array') assert.equal(ours.nelems, t.nr_elems, where);
    if (ours.kind === 'struct' || ours.kind === 'union') {
      assert.deepEqual(ours.members.map((m) => [m.name || '(anon)', m.type, m.bitOffset, m.bitfieldSize]),
        t.members!.map((m) => [m.name, m.type_id, m.bits_offset, m.bitfield_size ?? 0]), where);
    }
    if (ours.kind === 'enum') {
      // bpftool 7.1 prints 32-bit values sign-extended to 64 bits, beyond
      // what JSON numbers hold exactly: compare those by their low 32 bits.
      const low = (v: number | bigint): number => (Number.isSafeInteger(Number(v)) ? Number(BigInt.asUintN(32, BigInt(v))) : -1);
      assert.deepEqual(ours.values.map((v) => [v.name, Number(v.value) >= 2 ** 31 ? -1 : low(v.value)]),
        t.values!.map((v) => [v.name, v.val >= 2 ** 31 ? -1 : low(v.val)]), where);
    }
    if (ours.kind === 'func_proto') assert.deepEqual(ours.params.map((p) => [p.name || '(anon)', p.type]), t.params!.map((p) => [p.name, p.type_id]), where);
    if (ours.kind === 'datasec' && t.vars) assert.deepEqual(ours.vars.map((v) => [v.type, v.offset, v.size]), t.vars!.map((v) => [v.type_id, v.offset, v.size]), where);
  }
}

describe('BTF', function () {
  for (const file of readdirSync(BPF_DIR).filter((f) => f.endsWith('.bpf.o'))) {
    it(`reads ${file} as bpftool does`, function () {
      const o = new BpfObject(`${BPF_DIR}/${file}`);
      try {
        const btf = o.btf;
        assert.ok(btf, 'the object has BTF');
        // libbpf fixes data sections up at open; bpftool reads the file's
        // bytes, so only the types' identity is compared for those.
        compare(btf, viaBpftool(`${BPF_DIR}/${file}`).map((t) => (t.kind === 'DATASEC' ? { id: t.id, kind: t.kind, name: t.name } : t)));
      } finally {
        o.close();
      }
    });
  }

  it('reads the kernel\'s BTF as bpftool does (every type)', function () {
    this.timeout(60_000);
    compare(Btf.kernel(), viaBpftool('/sys/kernel/btf/vmlinux'));
  });

  it('finds types by C name and describes them', function () {
    const k = Btf.kernel();
    const task = k.find('struct task_struct');
    assert.equal(task?.kind, 'struct');
    const pid = task.kind === 'struct' ? task.members.find((m) => m.name === 'pid') : undefined;
    assert.ok(pid);
    assert.equal(k.typeName(pid.type), 'pid_t');
    assert.equal(k.sizeof(pid.type), 4);
    assert.equal(k.resolve(pid.type).kind, 'int');
    const o = new BpfObject(obj('test_progs'));
    try {
      const btf = o.btf!;
      const sec = btf.find('.maps', 'datasec');
      assert.equal(sec?.kind, 'datasec');
      assert.equal(o.map('hash_map').btfValueTypeId > 0, true);
      assert.equal(btf.typeName(o.map('hash_map').btfValueTypeId), '__u64');
    } finally {
      o.close();
    }
    assert.throws(() => k.type(-1), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.equal(k.find('struct no_such_struct_anywhere'), undefined);
  });
});
