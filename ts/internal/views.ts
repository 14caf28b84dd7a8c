// Buffers over part of a larger allocation, made the way Node makes its own
// (FastBuffer: a Uint8Array whose prototype is Buffer.prototype). This
// costs a quarter of buf.subarray(), which matters once per record or map
// element.
class View extends Uint8Array {}
Object.setPrototypeOf(View.prototype, Buffer.prototype);
Object.defineProperty(View.prototype, 'constructor', { value: Buffer });

/** A Buffer over `len` bytes of `buf` from `off` (no copy). */
export function view(buf: Buffer, off: number, len: number): Buffer {
  return new View(buf.buffer as ArrayBuffer, buf.byteOffset + off, len) as Buffer;
}

/** A Buffer over `len` bytes of `ab` from `off` (no copy). */
export function viewOf(ab: ArrayBuffer, off: number, len: number): Buffer {
  return new View(ab, off, len) as Buffer;
}
