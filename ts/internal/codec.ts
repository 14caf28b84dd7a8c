// Keys and values as the kernel sees them: raw bytes of a fixed size. A
// number or bigint is written in the host's byte order, the way a BPF
// program on this machine reads an integer.
import { endianness } from 'node:os';
import { fail, invalidArgType, outOfRange } from './errors.js';

const LE = endianness() === 'LE';

/**
 * Raw bytes of exactly the field's size, or an integer written in host byte
 * order (1-, 2-, 4- and 8-byte fields).
 * @inline
 */
export type Scalar = Buffer | Uint8Array | number | bigint;

function writeInt(buf: Buffer, off: number, size: number, v: bigint): void {
  if (size === 8) {
    if (v < 0n) LE ? buf.writeBigInt64LE(v, off) : buf.writeBigInt64BE(v, off);
    else LE ? buf.writeBigUInt64LE(v, off) : buf.writeBigUInt64BE(v, off);
    return;
  }
  const n = Number(v);
  if (n < 0) LE ? buf.writeIntLE(n, off, size) : buf.writeIntBE(n, off, size);
  else LE ? buf.writeUIntLE(n, off, size) : buf.writeUIntBE(n, off, size);
}

/**
 * Writes `v` as `size` bytes into `out` at `off` (a Buffer is copied as is).
 * `unsigned`: only 0 .. 2^bits - 1 (keys of raw maps, which know no sign,
 * take unsigned numbers as their typed twins with u32/u64 keys do).
 */
export function encodeInto(name: string, v: Scalar, size: number, out: Buffer, off: number, unsigned = false): void {
  if (v instanceof Uint8Array) {
    if (v.length !== size) {
      fail(RangeError, 'ERR_INVALID_BUFFER_SIZE', `The "${name}" buffer must be ${size} bytes, got ${v.length}`);
    }
    out.set(v, off);
    return;
  }
  if (typeof v !== 'number' && typeof v !== 'bigint') {
    invalidArgType(name, 'of type Buffer, number or bigint', v);
  }
  if (size !== 1 && size !== 2 && size !== 4 && size !== 8) {
    invalidArgType(name, `a Buffer of ${size} bytes (numbers fit only 1-, 2-, 4- and 8-byte fields)`, v);
  }
  if (typeof v === 'number' && !Number.isSafeInteger(v)) {
    outOfRange(name, 'a safe integer (use a bigint beyond 2^53)', v);
  }
  const b = BigInt(v);
  const bits = BigInt(size * 8);
  if (unsigned ? b < 0n || b >= 1n << bits : b < -(1n << (bits - 1n)) || b >= 1n << bits) {
    outOfRange(name, unsigned ? `an integer >= 0 that fits in ${size} byte(s)` : `an integer that fits in ${size} byte(s)`, v);
  }
  writeInt(out, off, size, b);
}

/** `v` as exactly `size` bytes; a Buffer of the right size is used as is. */
export function encode(name: string, v: Scalar, size: number, unsigned = false): Buffer {
  if (Buffer.isBuffer(v) && v.length === size) return v;
  const out = Buffer.alloc(size);
  encodeInto(name, v, size, out, 0, unsigned);
  return out;
}
