// Stack traces as the kernel writes them: arrays of u64 instruction
// addresses, little-endian on the hosts we run on, ended by the first 0
// (bpf_get_stackid() zero-fills a stack_trace map's value past the last
// frame; bpf_get_stack() returns the bytes it wrote and leaves the rest of
// the buffer as it was, which BPF programs usually zero).
import { Buffer } from 'node:buffer';
import { Btf } from './btf.js';
import { codecFor, type Codec } from './codec.js';
import { fail, invalidArgType, outOfRange } from './internal/errors.js';
import { dataViewOf } from './internal/views.js';

/** A stack trace: instruction addresses, innermost frame first. */
export type StackTrace = bigint[];

/** Options of decodeStack(). */
export interface DecodeStackOptions {
  /** Byte offset of the first frame in `bytes` (default 0; a multiple of 8 is not required). */
  offset?: number;
  /**
   * Bytes that hold frames (from `offset`): e.g. what bpf_get_stack()
   * returned, which the program sent along. Default: to the end of `bytes`.
   * Frames stop earlier at the first 0.
   */
  byteLength?: number;
}

/**
 * The frames of a stack trace as bigint addresses, innermost first,
 * stopping at the first 0 address or at the end of the bytes: a value of a
 * `BPF_MAP_TYPE_STACK_TRACE` map, or the buffer a BPF program filled with
 * bpf_get_stack() and sent through a ring or perf buffer. Takes the record's
 * bytes (Buffer, Uint8Array; `offset`/`byteLength` select the stack in a
 * larger record) or a BigUint64Array / BigInt64Array, such as a layout's
 * `'u64[127]'` field decodes to.
 *
 * @example
 * ```ts
 * // struct event { u32 pid; s32 ustack_bytes; u64 ustack[127]; } sent with bpf_ringbuf_output
 * for await (const rec of new RingBuffer(obj.map('events'))) {
 *   const ustack = decodeStack(rec, { offset: 8, byteLength: rec.readInt32LE(4) });
 * }
 * ```
 */
export function decodeStack(bytes: Uint8Array | BigUint64Array | BigInt64Array, opts: DecodeStackOptions = {}): StackTrace {
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  if (bytes instanceof BigUint64Array || bytes instanceof BigInt64Array) {
    if (opts.offset !== undefined || opts.byteLength !== undefined) {
      fail(TypeError, 'ERR_INVALID_ARG_VALUE', 'decodeStack(): offset and byteLength apply to bytes, not to a BigUint64Array (slice it with subarray())');
    }
    const out: StackTrace = [];
    for (let i = 0; i < bytes.length; i++) {
      const a = BigInt.asUintN(64, bytes[i]!);
      if (a === 0n) break;
      out.push(a);
    }
    return out;
  }
  if (!(bytes instanceof Uint8Array)) invalidArgType('bytes', 'a Buffer, Uint8Array or BigUint64Array', bytes);
  const offset = opts.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > bytes.length) outOfRange('opts.offset', `an integer >= 0 && <= ${bytes.length}`, offset);
  let len = opts.byteLength ?? bytes.length - offset;
  if (typeof len !== 'number' || !Number.isSafeInteger(len)) outOfRange('opts.byteLength', 'an integer', len);
  // bpf_get_stack() returns a negative errno when it fails: no frames.
  if (len < 0) return [];
  if (len > bytes.length - offset) outOfRange('opts.byteLength', `an integer <= ${bytes.length - offset} (the bytes after offset)`, len);
  return readFrames(dataViewOf(bytes), offset, len);
}

function readFrames(dv: DataView, offset: number, len: number): StackTrace {
  const out: StackTrace = [];
  // a trailing part of a frame (len not a multiple of 8) is not a frame
  const end = offset + len - (len % 8);
  for (let at = offset; at < end; at += 8) {
    const a = dv.getBigUint64(at, true);
    if (a === 0n) break;
    out.push(a);
  }
  return out;
}

// The u32 key codec of stack maps declared with key_size only, so that
// their ids iterate as numbers.
let u32Codec: Codec<number> | undefined;
/** @internal The codec of a stack id (u32). */
export function stackIdCodec(): Codec<number> {
  u32Codec ??= codecFor<number>(Btf.fromTypes([
    { id: 0, kind: 'void', name: '' },
    { id: 1, kind: 'int', name: 'u32', size: 4, bits: 32, bitOffset: 0, signed: false, char: false, bool: false },
  ]), 1);
  return u32Codec;
}

/**
 * @internal The value codec of a BPF_MAP_TYPE_STACK_TRACE map whose values
 * are `valueSize` bytes: decodes to bigint[] trimmed at the first 0, and
 * encodes an array of up to valueSize / 8 addresses (zero-filled).
 */
export function stackCodec(valueSize: number): Codec<StackTrace> {
  const depth = Math.floor(valueSize / 8);
  const typeName = `u64[${depth}] (stack trace)`;
  const decodeAt = (dv: DataView, _bytes: Uint8Array, offset: number): StackTrace => readFrames(dv, offset, valueSize);
  const decodeRecordAt = (dv: DataView, _bytes: Uint8Array, offset: number, len: number): StackTrace => readFrames(dv, offset, Math.min(len, valueSize));
  return {
    typeName,
    size: valueSize,
    minSize: 0,
    variable: true,
    enums: new Map(),
    decode(bytes: Uint8Array, offset = 0): StackTrace {
      if (offset + valueSize > bytes.length) fail(RangeError, 'ERR_OUT_OF_RANGE', `${typeName} needs ${valueSize} bytes at offset ${offset}; ${bytes.length} given`);
      return decodeAt(dataViewOf(bytes), bytes, offset);
    },
    decodeAt,
    decodeRecord(bytes: Uint8Array): StackTrace { return decodeRecordAt(dataViewOf(bytes), bytes, 0, bytes.length); },
    decodeRecordAt,
    encode(value: StackTrace, path = 'value'): Buffer {
      if (!Array.isArray(value)) invalidArgType(path, 'an array of bigint addresses', value);
      if (value.length > depth) outOfRange(`${path}.length`, `<= ${depth} (the map's depth)`, value.length);
      const out = Buffer.alloc(valueSize);
      value.forEach((a, i) => {
        if (typeof a !== 'bigint') invalidArgType(`${path}[${i}]`, 'of type bigint', a);
        if (a < 0n || a > 0xffff_ffff_ffff_ffffn) outOfRange(`${path}[${i}]`, '>= 0n && < 2n ** 64n', a);
        out.writeBigUInt64LE(a, i * 8);
      });
      return out;
    },
  };
}
