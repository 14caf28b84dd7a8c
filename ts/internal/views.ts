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

/** A Buffer of our own over the bytes of `u8` (no copy), even where `u8` is a Buffer. */
export function viewOfBytes(u8: Uint8Array): Buffer {
  return viewOf(u8.buffer as ArrayBuffer, u8.byteOffset, u8.byteLength);
}

/** `u8` as a Buffer: itself if it is one, else a Buffer over the same bytes (no copy). */
export function bufferOf(u8: Uint8Array): Buffer {
  return Buffer.isBuffer(u8) ? u8 : viewOfBytes(u8);
}

/** A DataView over exactly the bytes of `u8` (no copy). */
export function dataViewOf(u8: Uint8Array): DataView {
  return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
}
