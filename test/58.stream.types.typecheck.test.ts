// Type tests: this file compiles only while the types hold (tsc builds it
// with the rest of the tests; an unused @ts-expect-error is an error too).
// Records are typed by a layout (inferred), by a type argument with
// `type:`, as the documented Decoded without one, and as Buffers by
// default; layouts infer their value types; map.typed() types its view.
import { strict as assert } from 'node:assert';
import {
  Btf, PerfBuffer, RingBuffer, array, struct, type BpfMap, type Decoded, type LayoutValue, type PerfEvent,
} from '../ts/index.js';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
const expectType = <A, B>(ok: Equal<A, B>): Equal<A, B> => ok;

const Point = struct({ x: 's16', y: 's16' });
const Event = struct({
  pid: 'u32', ts: 'u64', delta: 's64', ok: 'bool', c: 'char', f: 'f64', comm: 'char[16]', raw: 'u8[4]', words: 'u16[2]',
  ids: 'u32[2]', big: 'u64[2]', sbig: 's64[2]', flags: 'bool[3]', at: Point, pts: array(Point, 2), args: 'char[]',
}, { name: 'event' });
type Event = LayoutValue<typeof Event>;

// Never called: only compiled.
export function typeChecks(ring: BpfMap, perf: BpfMap, btf: Btf): void {
  expectType<Event, {
    pid: number; ts: bigint; delta: bigint; ok: boolean; c: number; f: number; comm: string; raw: Uint8Array; words: Uint16Array;
    ids: Uint32Array; big: BigUint64Array; sbig: BigInt64Array; flags: boolean[]; at: { x: number; y: number };
    pts: { x: number; y: number }[]; args: string;
  }>(true);
  expectType<LayoutValue<ReturnType<typeof array<'f32'>>>, Float32Array>(true);

  // layout: records typed by it
  const rb = new RingBuffer(ring, { layout: Event });
  expectType<typeof rb, RingBuffer<Event>>(true);
  const pb = new PerfBuffer(perf, { layout: Event, onError: (e: Error, r: Buffer) => void [e, r] });
  expectType<typeof pb, PerfBuffer<Event>>(true);
  void (async () => {
    for await (const e of rb) {
      const comm: string = e.comm;
      const ts: bigint = e.ts;
      // @ts-expect-error no such member
      void e.nope;
      // @ts-expect-error a u64 is a bigint
      const n: number = e.ts;
      void [comm, ts, n];
    }
    for await (const e of pb) {
      if (e.lost === undefined) {
        const pid: number = e.data.pid;
        void pid;
      } else {
        const lost: number = e.lost;
        void lost;
      }
      expectType<typeof e, PerfEvent<Event>>(true);
    }
  })();

  // type: a type argument, or the documented Decoded
  interface Ev { pid: number; comm: string }
  const typed = new RingBuffer<Ev>(ring, { type: 'struct event', btf });
  expectType<typeof typed, RingBuffer<Ev>>(true);
  const untyped = new RingBuffer(ring, { type: 'struct event', btf });
  expectType<typeof untyped, RingBuffer<Decoded>>(true);
  const pTyped = new PerfBuffer<Ev>(perf, { type: 'struct event' });
  expectType<typeof pTyped, PerfBuffer<Ev>>(true);
  expectType<typeof untyped extends RingBuffer<infer T> ? T : never, Decoded>(true);

  // defaults and decode
  expectType<RingBuffer, RingBuffer<Buffer>>(true);
  const plain = new RingBuffer(ring);
  expectType<typeof plain, RingBuffer<Buffer>>(true);
  const decoded = new PerfBuffer(perf, { decode: (b) => b.length });
  expectType<typeof decoded, PerfBuffer<number>>(true);

  // @ts-expect-error a layout and a type exclude each other
  void new RingBuffer(ring, { layout: Event, type: 'struct event' });
  // @ts-expect-error a layout's records are its type, not another
  void new RingBuffer<{ other: string }>(ring, { layout: Event });
  // @ts-expect-error btf is a Btf
  void new RingBuffer(ring, { type: 'struct event', btf: 'types.bpf.o' });
  // @ts-expect-error not a field type
  void struct({ a: 'u24' });
  // @ts-expect-error an array of something that is no scalar
  void struct({ a: 'int[4]' });

  // map.typed()
  const m = ring.typed({ value: Event });
  expectType<typeof m, BpfMap<Buffer, Event>>(true);
  const m2 = ring.typed({ key: Point, value: Event });
  expectType<typeof m2, BpfMap<{ x: number; y: number }, Event>>(true);
  const m3 = ring.typed<Ev>({ value: 'struct event', btf });
  expectType<typeof m3, BpfMap<Buffer, Ev>>(true);
  m2.update({ x: 1 }, { pid: 1, comm: 'x' });
  // @ts-expect-error a value member of the wrong type
  m2.update({ x: 1 }, { pid: 'one' });
}

describe('types of typed streams (compiled by tsc)', function () {
  it('this file compiled: layouts, typed RingBuffer/PerfBuffer and map.typed() keep their types', function () {
    assert.equal(typeof typeChecks, 'function');
    assert.deepEqual([Event.offsets.at, Event.offsets.pts, Event.offsets.args, Event.size], [108, 112, 120, 120]);
  });
});
