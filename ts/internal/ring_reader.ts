// Reads BPF_MAP_TYPE_RINGBUF records straight from the ring's pages, mapped
// by the addon (native/ring_mmap.cc): the JavaScript counterpart of libbpf's
// ringbuf_process_ring(), as cilium/ebpf's and aya's readers do in their
// own languages. The views made here never leave this file: what the user
// gets is a copy (raw Buffers, copied in pieces of at most 64 KiB) or a
// decoded value (decoded from the pages when a reader takes it; the space
// is released once its batch is used up).
//
// Layout (kernel/bpf/ringbuf.c): consumer_pos (u64) at the start of the
// consumer page; producer_pos (u64) at the start of the producer page, the
// data pages right after it, mapped twice back to back so a record that
// wraps past the end of the data area is still contiguous. Positions count
// bytes from the ring's creation and never wrap (u64); the offset of a
// position in the data is pos & (size - 1). Each record: an 8-byte header
// {u32 len; u32 pg_off}, where len carries BUSY (bit 31, reserved and not
// yet committed) and DISCARD (bit 30), then len bytes, the whole padded to
// 8 bytes.
//
// Memory ordering (what the kernel pairs with, and why it holds on x86-64
// and arm64):
// - producer_pos is read once per drain with Atomics.load: a sequentially
//   consistent load, which is at least an acquire (V8 emits a plain mov on
//   x86-64, whose loads are not reordered with later loads, and ldar on
//   arm64). It pairs with the kernel's smp_store_release() of producer_pos
//   in __bpf_ringbuf_reserve(): the header the kernel wrote (with BUSY set)
//   before moving producer_pos is visible to us.
// - Each record's header is read with Atomics.load on an Int32Array, an
//   acquire again, pairing with the xchg() that clears BUSY in
//   bpf_ringbuf_commit() (a full barrier after the record's data was
//   written): once BUSY reads clear, the data read after it (plain
//   DataView / Uint8Array loads, which V8 does not move above an Atomics
//   operation) is complete.
// - consumer_pos is written with Atomics.store on a BigInt64Array, a
//   sequentially consistent store, which is at least a release (xchg on
//   x86-64, stlr on arm64), after every read of the records it frees. It
//   pairs with the kernel's smp_load_acquire() of consumer_pos in
//   __bpf_ringbuf_reserve(): the kernel cannot reuse the space before our
//   reads of it are done. The 64-bit store is single, never torn.
// No user code runs during a drain (decoding is the generated codec), so
// close() cannot detach the mappings under a walk.
import { BadRecord, Batch, type RingRecords } from './stream.js';
import { wordsOf, type Codec, type Words } from '../codec.js';

const BUSY = 0x8000_0000 | 0; // as the Int32Array reads it: negative
const DISCARD = 0x4000_0000;
const LEN = 0x3fff_ffff;

export interface RingPages {
  consumer: ArrayBuffer;
  data: ArrayBuffer;
  pageSize: number;
}

class MappedRing {
  readonly cons: BigInt64Array;
  readonly prod: BigInt64Array;
  readonly hdr: Int32Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly words: Words;
  readonly page: number;
  readonly mask: number;
  // Decoded streams: where the last walk ended (records up to it are
  // queued or taken), and how many queued batches still hold ring space.
  walked: number;
  pending = 0;

  constructor(pages: RingPages, readonly size: number, readonly source: number) {
    this.cons = new BigInt64Array(pages.consumer, 0, 1);
    this.prod = new BigInt64Array(pages.data, 0, 1);
    this.hdr = new Int32Array(pages.data);
    this.u8 = new Uint8Array(pages.data);
    this.dv = new DataView(pages.data);
    this.words = wordsOf(pages.data);
    this.page = pages.pageSize;
    this.mask = size - 1;
    this.walked = Number(this.cons[0]);
  }

  // Frees the ring up to `pos` (release: after every read of the records before it).
  release(pos: number): void {
    Atomics.store(this.cons, 0, BigInt(pos));
  }

  available(): number {
    return Number(Atomics.load(this.prod, 0) - Atomics.load(this.cons, 0));
  }
}

/** The largest ring read this way: the double mapping must fit an ArrayBuffer a typed array can span. */
export const MAX_MAPPED_RING = 1 << 30;

// The largest copy of raw records made at once (a batch). A fresh copy of
// megabytes costs a page fault per 4 KiB (malloc hands such sizes out as
// new mappings, which the kernel zeroes first); copies of this size are
// reused from malloc's heap once collected. Measured with bench/ringbuf.ts:
// 16-byte records drained from a full 8 MiB ring.
const CHUNK = 64 << 10;

export class RingReader {
  readonly #rings: MappedRing[] = [];
  #offs = new Uint32Array(0);
  #lens = new Uint32Array(0);
  #next = 0;

  constructor(readonly budgetRecords: number, readonly budgetBytes: number, readonly codec: Codec | undefined) {}

  add(pages: RingPages, size: number): void {
    this.#rings.push(new MappedRing(pages, size, this.#rings.length));
  }

  /** Whether queued batches (records decoded when taken) still hold space in a ring. */
  holding(): boolean {
    return this.#rings.some((r) => r.pending > 0);
  }

  /** Bytes written and not consumed yet, per ring. */
  available(): number[] {
    return this.#rings.map((r) => r.available());
  }

  /**
   * Takes up to the budget from the rings (starting with a different ring
   * each time, so one busy ring cannot starve another), hands the records
   * to `push` in batches and releases their space. Returns the records
   * taken.
   */
  drain(push: (batch: Batch, bytes: number) => void): number {
    const rings = this.#rings;
    let records = 0;
    let bytes = 0;
    const start = this.#next;
    this.#next = (start + 1) % rings.length;
    for (let i = 0; i < rings.length && records < this.budgetRecords && bytes < this.budgetBytes; i++) {
      const r = rings[(start + i) % rings.length]!;
      const before = this.#bytes;
      const got = this.#drainRing(r, this.budgetRecords - records, this.budgetBytes - bytes, push);
      records += got;
      bytes += this.#bytes - before;
    }
    return records;
  }

  // Data bytes taken since the reader was made (the walk's second result).
  #bytes = 0;

  #drainRing(r: MappedRing, maxRecords: number, maxBytes: number, push: (batch: Batch, bytes: number) => void): number {
    const prod = Number(Atomics.load(r.prod, 0)); // acquire
    // Decoded streams leave their records in the ring until they are
    // taken, so a walk starts where the last one ended; raw ones copy and
    // release at once, so it starts at the consumer position (only this
    // consumer writes it).
    const codec = this.codec;
    const cons = codec ? r.walked : Number(r.cons[0]);
    if (prod === cons) return 0;
    const { hdr, page, mask } = r;
    if (this.#offs.length < maxRecords) {
      this.#offs = new Uint32Array(Math.min(maxRecords, this.budgetRecords));
      this.#lens = new Uint32Array(this.#offs.length);
    }
    // Raw records are copied in chunks of at most CHUNK bytes, each one
    // batch, with where each record is noted during this walk (so neither
    // the copy nor RecordBatch needs a second one).
    const offs = this.#offs;
    const lens = this.#lens;
    let pos = cons;
    let off = cons % r.size;
    let n = 0; // records taken
    let first = 0; // the first record of the current chunk (or, decoded, of the walk)
    let chunk = cons; // where the current chunk starts
    let end = cons; // just past the last record taken (not discarded)
    let bytes = 0;
    let chunkBytes = 0;
    while (pos < prod && n < maxRecords && bytes < maxBytes) {
      const at = page + off;
      const h = Atomics.load(hdr, at >>> 2); // acquire
      if ((h & BUSY) !== 0) break; // not committed yet: its commit wakes us
      const len = h & LEN;
      const adv = (len + 15) & ~7; // header + data, padded to 8
      if ((h & DISCARD) === 0) {
        if (!codec && pos + adv - chunk > CHUNK && n > first) {
          push(this.#copy(r, chunk, end - chunk, offs.slice(first, n), lens.slice(first, n)), chunkBytes);
          first = n;
          chunk = pos;
          chunkBytes = 0;
        }
        offs[n] = pos - chunk + 8;
        lens[n] = len;
        n++;
        bytes += len;
        chunkBytes += len;
        end = pos + adv;
      }
      pos += adv;
      off = (off + adv) & mask;
    }
    this.#bytes += bytes;
    if (codec) {
      r.walked = pos;
      if (n > 0) {
        r.pending++;
        push(Batch.inRing(this.#inRing(r, codec, cons, pos, offs.slice(0, n), lens.slice(0, n)), n), bytes);
      } else if (r.pending === 0 && pos !== cons) {
        r.release(pos); // discarded records only, and nothing queued before them
      }
      return n;
    }
    if (n > first) push(this.#copy(r, chunk, end - chunk, offs.slice(first, n), lens.slice(first, n)), chunkBytes);
    // Release the space, discarded records included: after every read above.
    if (pos !== cons) r.release(pos);
    return n;
  }

  // A walk's records left in the ring, decoded from the pages as a reader
  // takes them: `offsets` from `from` (the header; data 8 bytes on). Once
  // all are taken the space goes back to the ring: up to the end of this
  // walk, or, with no batch queued behind it, up to where walks have
  // reached (discarded records walked since). Batches of a ring are taken
  // in order, so releases only move forward. No user code runs during a
  // decode (the codec is generated), so close() cannot unmap under it.
  #inRing(r: MappedRing, codec: Codec, from: number, to: number, offsets: Uint32Array, lengths: Uint32Array): RingRecords {
    const { u8, dv, words } = r;
    const base = r.page + (from % r.size);
    return {
      read(i) {
        const at = base + offsets[i]!;
        const len = lengths[i]!;
        try {
          return codec.decodeRecordAt(dv, u8, at, len, words);
        } catch (e) {
          return new BadRecord(e as Error, Buffer.from(u8.subarray(at, at + len)));
        }
      },
      release() {
        if (u8.byteLength === 0) return; // closed: the ring is unmapped
        r.release(--r.pending === 0 ? r.walked : to);
      },
    };
  }

  // The records from `from`, `len` bytes (the double mapping makes them
  // contiguous), copied in one go; the index says where each one is.
  #copy(r: MappedRing, from: number, len: number, offsets: Uint32Array, lengths: Uint32Array): Batch {
    const at = r.page + (from % r.size);
    const buf = Buffer.allocUnsafe(len); // the pool keeps 8-byte alignment
    buf.set(r.u8.subarray(at, at + len));
    const sources = new Uint16Array(offsets.length);
    if (r.source !== 0) sources.fill(r.source);
    return Batch.indexed(buf, { offsets, lengths, sources });
  }
}
