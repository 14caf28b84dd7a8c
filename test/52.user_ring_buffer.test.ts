// UserRingBuffer against the real kernel: records written here are taken
// by user_ringbuf_test's SYSCALL program `drain` (bpf_user_ringbuf_drain,
// Linux 6.1), run through BPF_PROG_TEST_RUN, which counts the samples and
// sums their fields into globals. Every number asserted is what the kernel
// program saw.
import { strict as assert } from 'node:assert';
import { BpfError, BpfObject, UserRingBuffer, features, struct, type Globals } from '../ts/index.js';
import { itIf, obj, throwsWith, withoutFdLeak } from './helpers.js';

const RECORD = 24; // struct urb_request { u32 kind; u32 len; u64 value; char tag[8]; }
const SLOT = 32; // what one record takes in the ring: 8-byte header + 24
const RING = 4096; // max_entries of `requests`

function request(kind: number, value: bigint, tag = ''): Buffer {
  const b = Buffer.alloc(RECORD);
  b.writeUInt32LE(kind, 0);
  b.writeUInt32LE(tag.length, 4);
  b.writeBigUInt64LE(value, 8);
  b.write(tag, 16, 8, 'latin1');
  return b;
}

const Request = struct({ kind: 'u32', len: 'u32', value: 'u64', tag: 'char[8]' });

describe('UserRingBuffer (bpf_user_ringbuf_drain)', function () {
  const it = itIf('userRingbuf', features.userRingbuf());
  let o: BpfObject;
  let seen: Globals;
  // Runs the drain program: how many samples the kernel took this time.
  const drain = (): number => o.program('drain').testRun().retval;
  beforeEach(() => {
    o = new BpfObject(obj('user_ringbuf_test')).load();
    seen = o.globals('.bss');
  });
  afterEach(() => o.close());

  it('delivers Buffers exactly: count, bytes and values seen by the BPF program', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    let sum = 0n;
    let kinds = 0n;
    for (let i = 1; i <= 100; i++) {
      urb.submit(request(i % 7, BigInt(i) * 1_000_003n, `t${i}`));
      sum += BigInt(i) * 1_000_003n;
      kinds += BigInt(i % 7);
    }
    assert.equal(urb.pendingBytes, 100 * SLOT);
    assert.deepEqual(urb.stats, { submitted: 100, bytes: 100 * RECORD });
    assert.equal(drain(), 100);
    assert.equal(urb.pendingBytes, 0);
    assert.equal(seen.samples, 100n);
    assert.equal(seen.short_samples, 0n);
    assert.equal(seen.value_sum, sum);
    assert.equal(seen.kind_sum, kinds);
    assert.equal(seen.last_tag, 't100');
    assert.equal(drain(), 0, 'nothing is left to drain');
  });

  it('takes Uint8Arrays and records of any length (a short one is seen as such)', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    const bytes = new Uint8Array(40);
    bytes.set(request(2, 77n, 'u8'));
    urb.submit(bytes); // 40 bytes: a full request and 16 more
    urb.submit(Buffer.from([1, 2, 3])); // shorter than a request
    assert.equal(urb.pendingBytes, 48 + 16);
    assert.equal(drain(), 2);
    assert.equal(seen.samples, 2n);
    assert.equal(seen.short_samples, 1n);
    assert.equal(seen.value_sum, 77n);
    assert.equal(seen.last_tag, 'u8');
  });

  it('encodes values by BTF type (the object\'s) and by layout', function () {
    using typed = new UserRingBuffer<{ kind: number; len: number; value: bigint; tag: string }>(o.map('requests'), { type: 'struct urb_request' });
    typed.submit({ kind: 3, len: 5, value: 1n << 40n, tag: 'btf' });
    using laid = new UserRingBuffer(o.map('requests'), { layout: Request });
    laid.submit({ kind: 4, len: 6, value: 5n, tag: 'layout' });
    typed.submit(request(1, 1n, 'raw')); // bytes still go as they are
    assert.equal(drain(), 3);
    assert.equal(seen.value_sum, (1n << 40n) + 6n);
    assert.equal(seen.kind_sum, 8n);
    assert.equal(seen.last_tag, 'raw');
    assert.equal(seen.short_samples, 0n);
    // A value that does not fit its type is refused before anything is written.
    assert.throws(() => typed.submit({ kind: -1, len: 0, value: 0n, tag: '' }), RangeError);
    assert.equal(typed.pendingBytes, 0);
  });

  it('is ENOSPC when full, never blocking: submit throws, trySubmit is false, submitMany stops', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    const fits = RING / SLOT; // 128
    const first = urb.submitMany(Array.from({ length: fits + 10 }, (_, i) => request(1, BigInt(i + 1))));
    assert.equal(first, fits);
    assert.equal(urb.pendingBytes, RING);
    const err = throwsWith(() => urb.submit(request(1, 1n)), { code: 'ENOSPC', op: 'user_ring_buffer__reserve' }, BpfError);
    assert.match(err.message, /map 'requests'/);
    throwsWith(() => urb.reserve(RECORD), { code: 'ENOSPC', op: 'user_ring_buffer__reserve' }, BpfError);
    assert.equal(urb.trySubmit(request(1, 1n)), false);
    assert.equal(drain(), fits);
    assert.equal(seen.value_sum, BigInt(fits * (fits + 1) / 2));
    // Drained: room again.
    assert.equal(urb.trySubmit(request(1, 1000n)), true);
    assert.equal(drain(), 1);
    assert.equal(seen.samples, BigInt(fits + 1));
  });

  it('records that wrap around the end of the ring arrive whole (reserved and written)', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    // 40-byte records take 48 bytes in the ring (4096 bytes).
    const rec = (v: bigint, tag: string): Buffer => Buffer.concat([request(1, v, tag), Buffer.alloc(16)]);
    for (let i = 0; i < 85; i++) urb.submit(rec(1n, 'fill'));
    assert.equal(drain(), 85);
    // At 4080 now: the header fits before the end, the data runs past it.
    const r = urb.reserve(40);
    rec(1_000n, 'wrap1').copy(r.buffer);
    r.submit();
    assert.equal(drain(), 1);
    assert.equal(seen.last_tag, 'wrap1');
    for (let i = 0; i < 84; i++) urb.submit(rec(1n, 'fill'));
    assert.equal(drain(), 84);
    // At 8160 (4064 in the ring): data from 4072 to 4112, past the end again.
    urb.submit(rec(123_456_789n, 'wrap2'));
    assert.equal(drain(), 1);
    assert.equal(seen.short_samples, 0n);
    assert.equal(seen.samples, 171n);
    assert.equal(seen.value_sum, 85n + 1_000n + 84n + 123_456_789n);
    assert.equal(seen.last_tag, 'wrap2');
  });

  it('reserve(): written in place, submitted or discarded; the kernel waits for a pending reservation', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    const a = urb.reserve(RECORD);
    assert.equal(a.buffer.length, RECORD);
    request(5, 500n, 'resv').copy(a.buffer);
    urb.submit(request(6, 600n, 'after'));
    // The reserved sample comes first and is not committed: nothing passes it.
    assert.equal(drain(), 0);
    assert.equal(seen.samples, 0n);
    a.submit();
    assert.equal(a.buffer.length, 0, 'the view is emptied once submitted');
    assert.equal(drain(), 2);
    assert.equal(seen.value_sum, 1100n);
    assert.equal(seen.last_tag, 'after');
    const d = urb.reserve(RECORD);
    request(9, 9000n, 'gone').copy(d.buffer);
    d.discard();
    assert.equal(d.buffer.length, 0);
    urb.submit(request(1, 1n, 'kept'));
    drain();
    assert.equal(seen.samples, 3n, 'the discarded sample never reached the program');
    assert.equal(seen.value_sum, 1101n);
    throwsWith(() => d.submit(), { code: 'ERR_INVALID_STATE' }, TypeError);
    assert.deepEqual(urb.stats, { submitted: 3, bytes: 3 * RECORD });
  });

  it('close(): idempotent, discards reservations, later use throws; the object closes it; no fd left', function () {
    withoutFdLeak(() => {
      const urb = new UserRingBuffer(o.map('requests'));
      const r = urb.reserve(RECORD);
      urb.submit(request(1, 10n));
      urb.close();
      urb.close();
      assert.equal(urb.closed, true);
      assert.equal(r.buffer.length, 0, 'a reservation is emptied by close()');
      throwsWith(() => r.submit(), { code: 'ERR_INVALID_STATE' }, TypeError);
      throwsWith(() => urb.submit(request(1, 1n)), { code: 'ERR_INVALID_STATE' }, TypeError);
      throwsWith(() => urb.reserve(8), { code: 'ERR_INVALID_STATE' }, TypeError);
      throwsWith(() => urb.pendingBytes, { code: 'ERR_INVALID_STATE' }, TypeError);
      // The discarded reservation is skipped, the submitted record still arrives.
      assert.equal(drain(), 1);
      assert.equal(seen.value_sum, 10n);
    });
    const kept = new UserRingBuffer(o.map('requests'));
    const r = kept.reserve(RECORD);
    o.close();
    assert.equal(kept.closed, true);
    assert.equal(r.buffer.length, 0);
    throwsWith(() => kept.submit(request(1, 1n)), { code: 'ERR_INVALID_STATE' }, TypeError);
  });
});

describe('UserRingBuffer: what is not a user ring buffer (any kernel)', function () {
  it('is a TypeError before any syscall', function () {
    using o = new BpfObject(obj('sock_example')).load();
    throwsWith(() => new UserRingBuffer({} as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new UserRingBuffer(undefined as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new UserRingBuffer(o.map('counts')), { code: 'ERR_INVALID_ARG_VALUE', message: /map 'counts' is of type array/ }, TypeError);
  });
});

describe('UserRingBuffer: bad input, before any syscall', function () {
  const it = itIf('userRingbuf', features.userRingbuf());
  let o: BpfObject;
  // mocha runs `before` even when every test is skipped by the probe.
  before(() => {
    if (features.userRingbuf() === true) o = new BpfObject(obj('user_ringbuf_test')).load();
  });
  after(() => o?.close());

  it('refuses what is not a user ring buffer map, and bad options', function () {
    throwsWith(() => new UserRingBuffer(o.map('user_rin.bss')), { code: 'ERR_INVALID_ARG_VALUE', message: /BPF_MAP_TYPE_USER_RINGBUF/ }, TypeError);
    const m = o.map('requests');
    throwsWith(() => new UserRingBuffer(m, { type: 'struct nope' }), { code: 'ERR_INVALID_ARG_VALUE', message: /no BTF type named 'struct nope'/ }, TypeError);
    throwsWith(() => new UserRingBuffer(m, { type: 'struct urb_request', layout: Request } as never), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    throwsWith(() => new UserRingBuffer(m, { layout: {} } as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new UserRingBuffer(m, { type: 42 } as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => new UserRingBuffer(m, null as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
  });

  it('refuses bad records with Node-style errors and writes nothing', function () {
    using urb = new UserRingBuffer(o.map('requests'));
    throwsWith(() => urb.submit({ kind: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => urb.submit('text' as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => urb.submit(Buffer.alloc(0)), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => urb.submit(Buffer.alloc(RING - 7)), { code: 'ERR_OUT_OF_RANGE', message: /at most 4088 bytes/ }, RangeError);
    throwsWith(() => urb.reserve(0), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => urb.reserve(1.5), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => urb.reserve('8' as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => urb.submitMany(5 as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    // One bad record in a batch: none of the batch is written.
    throwsWith(() => urb.submitMany([request(1, 1n), Buffer.alloc(0)]), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    assert.equal(urb.pendingBytes, 0);
    // The largest record fits.
    urb.submit(Buffer.alloc(RING - 8));
    assert.equal(urb.pendingBytes, RING);
    assert.equal(o.program('drain').testRun().retval, 1);
  });
});
