import { strict as assert } from 'node:assert';
import { sockExampleInsns } from '../examples/sock_example_insns.js';
import * as asm from '../ts/asm.js';

// Expected bytes come from the kernel's own macros (tools/include/linux/filter.h plus
// BPF_ATOMIC_OP from include/linux/filter.h), compiled with gcc against <linux/bpf.h> on x86_64
// and printed as hex; they also match a by-hand derivation from the opcode definitions.

const hex = (insns: readonly asm.Insn[]): string => asm.assemble(insns).toString('hex');

type ErrorClass = TypeErrorConstructor | RangeErrorConstructor;

function throwsCode(fn: () => unknown, cls: ErrorClass, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof cls, `expected ${cls.name}, got ${String(err)}`);
    assert.equal((err as { code?: unknown }).code, code);
    return true;
  });
}

describe('asm: eBPF instruction encoding', () => {
  it('encodes samples/bpf/sock_example byte-for-byte like the kernel macros', () => {
    const fd = 7;
    const insns = sockExampleInsns(fd); // what examples/sockstat.ts --insns loads
    const expected =
      'bf16000000000000' + // BPF_MOV64_REG(R6, R1)
      '3000000017000000' + // BPF_LD_ABS(BPF_B, 23)
      '630afcff00000000' + // BPF_STX_MEM(BPF_W, R10, R0, -4)
      'bfa2000000000000' + // BPF_MOV64_REG(R2, R10)
      '07020000fcffffff' + // BPF_ALU64_IMM(BPF_ADD, R2, -4)
      '1811000007000000' + '0000000000000000' + // BPF_LD_MAP_FD(R1, 7)
      '8500000001000000' + // BPF_RAW_INSN(BPF_JMP|BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem)
      '1500020000000000' + // BPF_JMP_IMM(BPF_JEQ, R0, 0, 2)
      'b701000001000000' + // BPF_MOV64_IMM(R1, 1)
      'db10000000000000' + // BPF_ATOMIC_OP(BPF_DW, BPF_ADD, R0, R1, 0)
      'b700000000000000' + // BPF_MOV64_IMM(R0, 0)
      '9500000000000000'; //  BPF_EXIT_INSN()
    const buf = asm.assemble(insns);
    assert.equal(buf.length, 13 * 8);
    assert.equal(buf.toString('hex'), expected);
    assert.deepEqual(insns.map((i) => i.slots), [1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(insns.map(String), [
      'r6 = r1', 'r0 = *(u8 *)skb[23]', '*(u32 *)(r10 -4) = r0', 'r2 = r10', 'r2 += -4', 'r1 = map[fd:7]',
      'call map_lookup_elem#1', 'if r0 == 0 goto pc+2', 'r1 = 1', 'lock *(u64 *)(r0 +0) += r1', 'r0 = 0', 'exit',
    ]);
  });

  const cases: ReadonlyArray<readonly [asm.Insn, string]> = [
    [asm.alu64Imm(asm.SUB, asm.R3, -100), '170300009cffffff'],
    [asm.alu64Reg(asm.ARSH, asm.R4, asm.R9), 'cf94000000000000'],
    [asm.alu32Imm(asm.XOR, asm.R5, 0xffffffff), 'a4050000ffffffff'],
    [asm.alu32Reg(asm.MOD, asm.R7, asm.R8), '9c87000000000000'],
    [asm.alu64Imm(asm.LSH, asm.R1, 63), '670100003f000000'],
    [asm.alu64Reg(asm.MUL, asm.R0, asm.R10), '2fa0000000000000'],
    [asm.mov32Imm(asm.R9, -1), 'b4090000ffffffff'],
    [asm.mov32Reg(asm.R1, asm.R2), 'bc21000000000000'],
    [asm.mov64Imm(asm.R3, 0x7fffffff), 'b7030000ffffff7f'],
    [asm.neg64(asm.R4), '8704000000000000'],
    [asm.neg32(asm.R4), '8404000000000000'],
    [asm.toBe(asm.R0, 16), 'dc00000010000000'],
    [asm.toLe(asm.R6, 64), 'd406000040000000'],
    [asm.endian(asm.TO_BE, asm.R0, 16), 'dc00000010000000'],
    [asm.ldImm64(asm.R2, 0x0123456789abcdefn), '18020000efcdab89' + '0000000067452301'],
    [asm.ldImm64(asm.R3, -2), '18030000feffffff' + '00000000ffffffff'],
    [asm.ldImm64(asm.R3, 0xfffffffffffffffen), '18030000feffffff' + '00000000ffffffff'],
    [asm.ldMapValue(asm.R4, 9, 16), '1824000009000000' + '0000000010000000'],
    [asm.ldInd(asm.H, asm.R3, -8), '48300000f8ffffff'],
    [asm.ldAbs(asm.W, 12), '200000000c000000'],
    [asm.ldxMem(asm.DW, asm.R0, asm.R1, -32768), '7910008000000000'],
    [asm.ldxMem(asm.H, asm.R2, asm.R6, 12), '69620c0000000000'],
    [asm.stxMem(asm.B, asm.R10, asm.R3, -1), '733affff00000000'],
    [asm.stMem(asm.DW, asm.R10, -8, 0xdeadbeef), '7a0af8ffefbeadde'],
    [asm.atomicAnd(asm.W, asm.R1, asm.R2, 4), 'c321040050000000'],
    [asm.atomicOr(asm.DW, asm.R1, asm.R2, 0), 'db21000040000000'],
    [asm.atomicXor(asm.DW, asm.R1, asm.R2, 8), 'db210800a0000000'],
    [asm.atomicFetchAdd(asm.DW, asm.R0, asm.R1, -8), 'db10f8ff01000000'],
    [asm.atomicFetchAnd(asm.W, asm.R0, asm.R1, 0), 'c310000051000000'],
    [asm.atomicFetchOr(asm.DW, asm.R0, asm.R1, 0), 'db10000041000000'],
    [asm.atomicFetchXor(asm.W, asm.R0, asm.R1, 0), 'c3100000a1000000'],
    [asm.atomicXchg(asm.DW, asm.R10, asm.R2, -16), 'db2af0ffe1000000'],
    [asm.atomicCmpxchg(asm.W, asm.R3, asm.R4, 0), 'c3430000f1000000'],
    [asm.jmpImm(asm.JSGT, asm.R1, -5, -3), '6501fdfffbffffff'],
    [asm.jmpReg(asm.JNE, asm.R1, asm.R2, 10), '5d210a0000000000'],
    [asm.jmp32Imm(asm.JLT, asm.R3, 100, 1), 'a603010064000000'],
    [asm.jmp32Reg(asm.JSET, asm.R4, asm.R5, -1), '4e54ffff00000000'],
    [asm.jmpImm(asm.JSLE, asm.R0, 0, 32767), 'd500ff7f00000000'],
    [asm.ja(-1), '0500ffff00000000'],
    [asm.call('ktime_get_ns'), '8500000005000000'],
    [asm.call(asm.helpers.ringbuf_output), '8500000082000000'],
    [asm.callRel(5), '8510000005000000'],
    [asm.callRel(-7), '85100000f9ffffff'],
    [asm.raw(0x95, 0, 0, 0, 0), '9500000000000000'],
  ];
  cases.forEach(([insn, expected], i) => {
    it(`#${i} ${insn.text} encodes as ${expected}`, () => {
      assert.equal(insn.bytes.toString('hex'), expected);
      assert.equal(insn.slots, expected.length / 16);
    });
  });

  it('disassembles into verifier-log style text', () => {
    assert.deepEqual([
      asm.alu32Reg(asm.ARSH, asm.R1, asm.R2), asm.neg64(asm.R4), asm.toBe(asm.R0, 16),
      asm.ldImm64(asm.R3, -2), asm.ldMapValue(asm.R4, 9, 16), asm.ldxMem(asm.DW, asm.R0, asm.R1, -8),
      asm.stMem(asm.H, asm.R10, -2, 7), asm.atomicFetchAdd(asm.W, asm.R0, asm.R1, 0),
      asm.atomicXchg(asm.DW, asm.R10, asm.R2, -16), asm.atomicCmpxchg(asm.DW, asm.R3, asm.R4, 0),
      asm.jmp32Reg(asm.JSGE, asm.R4, asm.R5, -1), asm.ja(3), asm.callRel(-7), asm.call(9999),
    ].map(String), [
      'w1 s>>= w2', 'r4 = -r4', 'r0 = be16 r0',
      'r3 = 0xfffffffffffffffe ll', 'r4 = map_value[fd:9] + 16', 'r0 = *(u64 *)(r1 -8)',
      '*(u16 *)(r10 -2) = 7', 'w1 = atomic_fetch_add((u32 *)(r0 +0), w1)',
      'r2 = atomic64_xchg((u64 *)(r10 -16), r2)', 'r0 = atomic64_cmpxchg((u64 *)(r3 +0), r0, r4)',
      'if w4 s>= w5 goto pc-1', 'goto pc+3', 'call pc-7', 'call unknown#9999',
    ]);
  });

  it('maps helper names to the kernel BPF_FUNC_* ids', () => {
    assert.equal(asm.helpers.unspec, 0);
    assert.equal(asm.helpers.map_lookup_elem, 1);
    assert.equal(asm.helpers.map_update_elem, 2);
    assert.equal(asm.helpers.map_delete_elem, 3);
    assert.equal(asm.helpers.ktime_get_ns, 5);
    assert.equal(asm.helpers.trace_printk, 6);
    assert.equal(asm.helpers.tail_call, 12);
    assert.equal(asm.helpers.get_current_pid_tgid, 14);
    assert.equal(asm.helpers.probe_read_kernel, 113);
    assert.equal(asm.helpers.ringbuf_output, 130);
    assert.equal(asm.helpers.user_ringbuf_drain, 209);
    assert.equal(asm.helpers.cgrp_storage_delete, 211);
    const ids = Object.values(asm.helpers);
    assert.deepEqual(ids, ids.map((_, i) => i), 'ids are dense and in kernel order');
    assert.ok(Object.isFrozen(asm.helpers));
    assert.equal(asm.call('trace_printk').bytes.toString('hex'), asm.call(6).bytes.toString('hex'));
  });

  it('produces immutable instructions and a fresh buffer per assemble()', () => {
    const insn = asm.exit();
    assert.ok(Object.isFrozen(insn));
    insn.bytes.fill(0xff);
    assert.equal(insn.bytes.toString('hex'), '9500000000000000');
    const a = asm.assemble([insn]);
    a.fill(0);
    assert.equal(hex([insn, insn]), '95000000000000009500000000000000');
    assert.equal(asm.assemble([]).length, 0);
  });

  describe('rejects misuse before encoding', () => {
    const T = TypeError, R = RangeError;
    const TYPE = 'ERR_INVALID_ARG_TYPE', VALUE = 'ERR_INVALID_ARG_VALUE', RANGE = 'ERR_OUT_OF_RANGE';
    // Casts stand in for untyped JavaScript callers.
    const reg = (v: unknown): asm.Reg => v as asm.Reg;
    const cases: ReadonlyArray<readonly [string, () => unknown, ErrorClass, string]> = [
      ['register as string', () => asm.mov64Reg(reg('r1'), asm.R2), T, TYPE],
      ['register undefined', () => asm.neg64(reg(undefined)), T, TYPE],
      ['register 11', () => asm.mov64Reg(asm.R1, reg(11)), R, RANGE],
      ['register -1', () => asm.ldxMem(asm.W, reg(-1), asm.R1, 0), R, RANGE],
      ['register 1.5', () => asm.mov64Imm(reg(1.5), 0), R, RANGE],
      ['offset 32768', () => asm.stxMem(asm.W, asm.R10, asm.R0, 32768), R, RANGE],
      ['offset -32769', () => asm.jmpImm(asm.JEQ, asm.R0, 0, -32769), R, RANGE],
      ['offset as bigint', () => asm.ja(1n as unknown as number), T, TYPE],
      ['imm 2^32', () => asm.mov64Imm(asm.R0, 2 ** 32), R, RANGE],
      ['imm -2^31-1', () => asm.alu64Imm(asm.ADD, asm.R0, -(2 ** 31) - 1), R, RANGE],
      ['imm NaN', () => asm.stMem(asm.W, asm.R10, -4, NaN), R, RANGE],
      ['imm as string', () => asm.ldAbs(asm.B, '23' as unknown as number), T, TYPE],
      ['unknown helper name', () => asm.call('no_such_helper' as asm.HelperName), T, VALUE],
      ['inherited helper name', () => asm.call('toString' as asm.HelperName), T, VALUE],
      ['negative helper id', () => asm.call(-1), R, RANGE],
      ['helper as object', () => asm.call({} as unknown as number), T, TYPE],
      ['atomic with B', () => asm.atomicAdd(asm.B as asm.AtomicSize, asm.R0, asm.R1, 0), T, VALUE],
      ['atomic with H', () => asm.atomicCmpxchg(asm.H as asm.AtomicSize, asm.R0, asm.R1, 0), T, VALUE],
      ['ldAbs with DW', () => asm.ldAbs(asm.DW as asm.PacketSize, 0), T, VALUE],
      ['bad size', () => asm.ldxMem(0x20 as asm.Size, asm.R0, asm.R1, 0), T, VALUE],
      ['bad ALU op', () => asm.alu64Imm(0xd0 as asm.AluOp, asm.R0, 0), T, VALUE],
      ['NEG with a register', () => asm.alu64Reg(asm.NEG, asm.R0, asm.R1), T, VALUE],
      ['NEG with an imm', () => asm.alu32Imm(asm.NEG, asm.R0, 1), T, VALUE],
      ['JA through jmpImm', () => asm.jmpImm(asm.JA as asm.JmpOp, asm.R0, 0, 1), T, VALUE],
      ['CALL as jump op', () => asm.jmpReg(asm.CALL as asm.JmpOp, asm.R0, asm.R1, 1), T, VALUE],
      ['endian width 8', () => asm.toLe(asm.R0, 8 as 16), T, VALUE],
      ['ldImm64 too large', () => asm.ldImm64(asm.R0, 1n << 64n), R, RANGE],
      ['ldImm64 too small', () => asm.ldImm64(asm.R0, -(1n << 63n) - 1n), R, RANGE],
      ['ldImm64 unsafe number', () => asm.ldImm64(asm.R0, 2 ** 53), R, RANGE],
      ['ldImm64 as string', () => asm.ldImm64(asm.R0, '1' as unknown as number), T, TYPE],
      ['negative map fd', () => asm.ldMapFd(asm.R1, -1), R, RANGE],
      ['map value offset -1', () => asm.ldMapValue(asm.R1, 3, -1), R, RANGE],
      ['callRel beyond int32', () => asm.callRel(2 ** 32), R, RANGE],
      ['assemble a non-array', () => asm.assemble(Buffer.alloc(8) as unknown as asm.Insn[]), T, TYPE],
      ['assemble a foreign element', () => asm.assemble([asm.exit(), {} as asm.Insn]), T, TYPE],
      ['constructing Insn directly', () => new (asm.Insn as unknown as new () => asm.Insn)(), T, 'ERR_ILLEGAL_CONSTRUCTOR'],
    ];
    for (const [what, fn, cls, code] of cases) {
      it(`${what}: ${cls.name} ${code}`, () => throwsCode(fn, cls, code));
    }

    it('accepts the boundaries', () => {
      assert.equal(hex([asm.mov64Imm(asm.R0, -(2 ** 31))]), 'b700000000000080');
      assert.equal(hex([asm.mov64Imm(asm.R0, 2 ** 32 - 1)]), 'b7000000ffffffff');
      assert.equal(hex([asm.ldxMem(asm.B, asm.R10, asm.R0, 32767)]), '710aff7f00000000');
      assert.equal(hex([asm.ldImm64(asm.R0, -(1n << 63n))]), '18000000000000000000000000000080');
      assert.equal(hex([asm.ldImm64(asm.R0, Number.MAX_SAFE_INTEGER)]), '18000000ffffffff00000000ffff1f00');
    });
  });
});
