import { strict as assert } from 'node:assert';
import { BpfMap, RingBuffer, decodeStack, type StackTrace } from '../ts/index.js';
import { features } from '../ts/index.js';
import { itIf, throwsWith } from './helpers.js';
import { DEPTH, sampled, stacksObject, tracepointStacks, withTracepoint } from './stack_probe.js';

// Stack-trace maps and bpf_get_stack() records, filled by the kernel
// (bpf/stacks_test.bpf.c: a getppid() tracepoint of this process), decoded
// to bigint addresses and checked against the raw bytes the kernel wrote.

const KERNEL_BASE = 0xffff_8000_0000_0000n; // x86_64: kernel half of the address space
const USER_TOP = 0x0000_8000_0000_0000n;

// The frames in raw stack-map bytes, read here independently of decodeStack.
function framesOf(raw: Buffer): bigint[] {
  const out: bigint[] = [];
  for (let at = 0; at + 8 <= raw.length; at += 8) {
    const a = raw.readBigUInt64LE(at);
    if (a === 0n) break;
    out.push(a);
  }
  return out;
}

describe('stack-trace maps and stacks in records', function () {
  const kernelStacks = tracepointStacks('kernel');

  itIf('tracepointKernelStacks', kernelStacks)('a stack-trace map decodes its values as bigint[] (trimmed at the first 0) and its ids as numbers', function () {
    using o = stacksObject(process.pid);
    withTracepoint(o, () => {
      for (let i = 0; i < 5; i++) void process.ppid;
    });
    const map = o.map<number, StackTrace>('stacks');
    assert.equal(map.type, 'stack_trace');
    assert.equal(map.valueType, `u64[${DEPTH}] (stack trace)`);
    const key = sampled(o).map(([k]) => k).find((k) => k.kstack >= 0 && k.ustack >= 0);
    assert.ok(key, 'a sample with both stacks');

    const kernel = map.lookup(key.kstack);
    assert.ok(Array.isArray(kernel));
    assert.ok(kernel.length >= 2 && kernel.length < DEPTH, `several kernel frames, got ${kernel.length}`);
    for (const a of kernel) assert.ok(typeof a === 'bigint' && a >= KERNEL_BASE, `kernel address, got 0x${a.toString(16)}`);
    const raw = map.raw.lookup(Buffer.from(new Uint32Array([key.kstack]).buffer)) as Buffer;
    assert.equal(raw.length, DEPTH * 8);
    assert.deepEqual(kernel, framesOf(raw), 'the same frames as the raw bytes, up to the first 0');
    assert.equal(raw.readBigUInt64LE(kernel.length * 8), 0n, 'the kernel zero-filled past the last frame');

    const user = map.lookup(key.ustack)!;
    assert.ok(user.length >= 1, 'user frames');
    for (const a of user) assert.ok(a > 0n && a < USER_TOP, `user address, got 0x${a.toString(16)}`);

    // iteration: ids as numbers, stacks as bigint[]
    const all = new Map(map.entries());
    assert.ok(all.size >= 2);
    for (const [id, frames] of all) {
      assert.equal(typeof id, 'number');
      assert.ok(Array.isArray(frames) && frames.every((f) => typeof f === 'bigint' && f !== 0n));
    }
    assert.deepEqual(all.get(key.kstack), kernel);
    assert.deepEqual([...map.keys()].sort(), [...all.keys()].sort());

    // stack ids can be deleted (tools clear the map between intervals)
    assert.equal(map.delete(key.kstack), true);
    assert.equal(map.lookup(key.kstack), undefined);
  });

  itIf('tracepointKernelStacks', kernelStacks)('bpf_get_stack() records from a ring buffer: decodeStack() reads the bytes written, the same frames as the stack map', async function () {
    using o = stacksObject(process.pid);
    const rb = new RingBuffer(o.map('events'));
    try {
      withTracepoint(o, () => {
        for (let i = 0; i < 3; i++) void process.ppid;
      });
      const mapStacks = [...o.map<number, StackTrace>('stacks').values()].map((s) => s.map((a) => a.toString(16)).join(','));
      let seen = 0;
      for await (const rec of rb) {
        // struct stack_event { u32 pid; s32 kstack_bytes; s32 ustack_bytes; u32 pad; u64 kstack[64]; u64 ustack[64]; }
        assert.equal(rec.length, 16 + 2 * DEPTH * 8);
        assert.equal(rec.readUInt32LE(0), process.pid);
        const kbytes = rec.readInt32LE(4);
        const ubytes = rec.readInt32LE(8);
        assert.ok(kbytes > 0 && kbytes % 8 === 0, `bpf_get_stack() wrote kernel frames: ${kbytes}`);
        const kernel = decodeStack(rec, { offset: 16, byteLength: kbytes });
        assert.equal(kernel.length, kbytes / 8);
        for (const a of kernel) assert.ok(a >= KERNEL_BASE);
        assert.ok(mapStacks.includes(kernel.map((a) => a.toString(16)).join(',')), 'bpf_get_stackid() stored the same kernel stack');
        const user = decodeStack(rec, { offset: 16 + DEPTH * 8, byteLength: ubytes });
        assert.ok(user.length >= 1 && user.every((a) => a < USER_TOP), 'user frames');
        assert.ok(mapStacks.includes(user.map((a) => a.toString(16)).join(',')), 'and the same user stack');
        // the same frames from a BigUint64Array over the record (as a 'u64[64]' layout field decodes)
        const words = new BigUint64Array(rec.buffer.slice(rec.byteOffset + 16, rec.byteOffset + 16 + kbytes));
        assert.deepEqual(decodeStack(words), kernel);
        if (++seen === 3) break;
      }
    } finally {
      rb.close();
    }
  });

  itIf('perfEvents', features.programType('perf_event'))('a perf event program samples this process: kernel and user stacks decode', async function () {
    using o = stacksObject(process.pid);
    const links = o.program('stack_sample').attachPerfEvent({ type: 'software', config: 'cpu-clock', sampleFreq: 2000, pid: process.pid });
    try {
      // busy in user space and in the kernel: 200 ms of getppid() and arithmetic
      const until = Date.now() + 200;
      let x = 0;
      while (Date.now() < until) x += process.ppid;
      assert.ok(x > 0);
    } finally {
      for (const l of Array.isArray(links) ? links : [links]) l.detach();
    }
    assert.ok(Number(o.bss.perf_samples) >= 20, `samples: ${o.bss.perf_samples}`);
    const map = o.map<number, StackTrace>('stacks');
    const users = sampled(o).filter(([k]) => k.ustack >= 0).map(([k]) => map.lookup(k.ustack)!);
    assert.ok(users.length >= 1, 'user stacks sampled');
    for (const s of users) assert.ok(s.length >= 1 && s.every((a) => a > 0n && a < USER_TOP));
  });

  describe('decodeStack() on bytes it is given', () => {
    it('stops at the first 0 and at the end; negative byteLength (a failed bpf_get_stack) is no frames', () => {
      const b = Buffer.alloc(40);
      b.writeBigUInt64LE(0xffffffff81000010n, 0);
      b.writeBigUInt64LE(0x7f0000001234n, 8);
      b.writeBigUInt64LE(0n, 16);
      b.writeBigUInt64LE(0x42n, 24); // past the terminator
      assert.deepEqual(decodeStack(b), [0xffffffff81000010n, 0x7f0000001234n]);
      assert.deepEqual(decodeStack(b, { byteLength: 8 }), [0xffffffff81000010n]);
      assert.deepEqual(decodeStack(b, { offset: 24, byteLength: 12 }), [0x42n], 'a partial frame is not a frame');
      assert.deepEqual(decodeStack(b, { byteLength: -14 }), []);
      assert.deepEqual(decodeStack(new Uint8Array(0)), []);
      assert.deepEqual(decodeStack(new BigUint64Array([5n, 6n, 0n, 7n])), [5n, 6n]);
      assert.deepEqual(decodeStack(new BigInt64Array([-1n])), [0xffff_ffff_ffff_ffffn], 'signed words read as addresses');
    });

    it('bad input: TypeError / RangeError with codes', () => {
      throwsWith(() => decodeStack('abc' as unknown as Buffer), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
      throwsWith(() => decodeStack(Buffer.alloc(16), { offset: 17 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => decodeStack(Buffer.alloc(16), { offset: 8, byteLength: 16 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => decodeStack(Buffer.alloc(16), { offset: 1.5 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => decodeStack(new BigUint64Array(2), { offset: 8 }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    });
  });

  describe('a standalone stack-trace map', () => {
    it('BpfMap.create({ type: "stack_trace" }) decodes as well; the kernel refuses writes from user space', () => {
      using m = BpfMap.create({ type: 'stack_trace', keySize: 4, valueSize: 8 * 16, maxEntries: 8 });
      assert.equal(m.lookup(0), undefined);
      assert.deepEqual([...m.keys()], []);
      // the stack map has no update from user space: the kernel's EINVAL, encoded first
      throwsWith(() => m.update(0, [1n, 2n]), { code: 'EINVAL', op: 'bpf_map_update_elem' });
      throwsWith(() => m.update(0, new Array<bigint>(17).fill(1n)), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
      throwsWith(() => m.update(0, [1] as unknown as bigint[]), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    });
  });
});
