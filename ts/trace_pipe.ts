// bpf_printk's output: tracefs's trace_pipe, read as parsed lines. The file
// is non-blocking and watched by libuv (native/trace_pipe.cc): no threadpool
// thread waits on it, and close or abort ends the reading at once.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { addon } from './internal/addon.js';
import type { NativeStream, OnBatch } from './internal/stream.js';
import { checkInt, checkString, invalidArgType } from './internal/errors.js';

/** One line of trace_pipe, as the kernel formats it. */
export interface TracePipeLine {
  /** The task's comm, as the kernel recorded it ('<...>' when it no longer knows it). */
  readonly task: string;
  /** The thread id of the task that wrote the line (for a single-threaded process, its pid). */
  readonly pid: number;
  /** The CPU it ran on. */
  readonly cpu: number;
  /** The irq-info flags column (e.g. 'd..31': irqs off, need-resched, hardirq/softirq, preempt depth), where shown. */
  readonly flags?: string;
  /** The trace clock's time, in seconds as printed (the default 'local' clock counts from boot). */
  readonly timestamp: number;
  /** The event: 'bpf_trace_printk' for bpf_printk. */
  readonly event: string;
  /** What bpf_printk printed (the text after the event name). */
  readonly message: string;
  /** The whole line. */
  readonly line: string;
}

/** Options of tracePipe(). */
export interface TracePipeOptions {
  /** Only lines written by this thread id (a process's main thread has its pid). */
  pid?: number;
  /** Aborting ends the iteration: a pending read rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The trace_pipe to read; default that of the tracefs mount (mounting it at /sys/kernel/tracing if needed). */
  path?: string;
  /**
   * true: turn tracing on first (writes 1 to tracing_on next to trace_pipe;
   * system-wide, and left on). With tracing off (`tracing_on` 0),
   * bpf_printk's lines are not recorded and none arrive. Default false:
   * the system's setting is left alone.
   */
  tracingOn?: boolean;
}

interface TraceAddon {
  NativeTracePipe: new (path: string, onBatch: OnBatch) => NativeStream;
  mountTracefs(dir: string): void;
}
const native = addon as unknown as TraceAddon;

// `  <task>-<pid>  [<cpu>] <flags> <seconds>: <event>: <message>`; the task
// may hold spaces and dashes (the last '-digits' before the CPU is the pid),
// a '(tgid)' column appears with the record-tgid option, flags with irq-info.
const LINE = /^\s*(.*)-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:([^\s]{4,6})\s+)?(\d+\.\d+):\s+([^:\s]+):\s?(.*)$/;

/** @internal One trace_pipe line, parsed; undefined for a line of another shape. */
export function parseTraceLine(line: string): TracePipeLine | undefined {
  const m = LINE.exec(line);
  if (!m) return undefined;
  const [, task, pid, cpu, flags, ts, event, message] = m;
  return Object.freeze({
    task: task!.trim(), pid: Number(pid), cpu: Number(cpu), ...(flags ? { flags } : {}),
    timestamp: Number(ts), event: event!, message: message!, line,
  });
}

function tracefsPipe(): string {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' '));
  const mounted = mounts.find((f) => f[2] === 'tracefs')?.[1];
  if (mounted) return `${mounted}/trace_pipe`;
  if (existsSync('/sys/kernel/debug/tracing/trace_pipe')) return '/sys/kernel/debug/tracing/trace_pipe';
  const dir = '/sys/kernel/tracing';
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  native.mountTracefs(dir);
  return `${dir}/trace_pipe`;
}

/**
 * The lines bpf_printk (bpf_trace_printk) writes, from tracefs's
 * trace_pipe, parsed; `pid` keeps only those of one thread. Reading
 * trace_pipe consumes what it reads, and there is one per system: every
 * reader (another tracePipe(), `cat trace_pipe`, `bpftool prog tracelog`)
 * takes lines from the same queue, so each line goes to one of them only.
 * Lines not shaped as the kernel prints events are skipped. Nothing is
 * recorded while tracing is off (tracing_on 0): see `tracingOn`. Mounts tracefs
 * when it is not mounted (needs root). Errors: BpfError (op 'open', or
 * 'mount'); misuse is a TypeError/RangeError before anything is opened.
 *
 * The iteration ends at `break` (or return()), and on abort, when a pending
 * read rejects with the signal's reason; neither waits for a line to come.
 *
 * @example
 * ```ts
 * const ac = new AbortController();
 * for await (const l of tracePipe({ pid: process.pid, signal: ac.signal })) {
 *   console.log(l.cpu, l.timestamp, l.message);
 * }
 * ```
 */
export function tracePipe(opts: TracePipeOptions = {}): AsyncIterableIterator<TracePipeLine> {
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  const pid = opts.pid === undefined ? undefined : checkInt('opts.pid', opts.pid, 1, 0x7fff_ffff);
  const signal = opts.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) invalidArgType('opts.signal', 'an AbortSignal', signal);
  const path = opts.path === undefined ? undefined : checkString('opts.path', opts.path);
  if (opts.tracingOn !== undefined && typeof opts.tracingOn !== 'boolean') invalidArgType('opts.tracingOn', 'of type boolean', opts.tracingOn);

  const lines: TracePipeLine[] = [];
  let partial = '';
  let stream: NativeStream | undefined;
  let failure: unknown;
  let done = false;
  let waiter: { resolve: (r: IteratorResult<TracePipeLine>) => void; reject: (e: unknown) => void } | undefined;

  const wake = (): void => {
    const w = waiter;
    if (!w) return;
    if (lines.length > 0) {
      waiter = undefined;
      stream?.unref();
      w.resolve({ value: lines.shift()!, done: false });
    } else if (failure !== undefined || done) {
      waiter = undefined;
      if (failure !== undefined) w.reject(failure);
      else w.resolve({ value: undefined, done: true });
    }
  };
  const finish = (): void => {
    if (!stream) return;
    const s = stream;
    stream = undefined;
    s.close();
    signal?.removeEventListener('abort', onAbort);
  };
  const onAbort = (): void => {
    failure = signal!.reason;
    lines.length = 0;
    finish();
    wake();
  };
  // The callback must stay reachable while the native side may call it.
  const onBatch: OnBatch = (batch, count, errno) => {
    if (errno !== 0) {
      failure = Object.assign(new Error(`reading trace_pipe failed: errno ${errno}`), { errno });
      finish();
      wake();
      return;
    }
    if (!batch) return;
    let text = partial;
    let off = 0;
    for (let i = 0; i < count; i++) {
      const len = batch.readUInt32LE(off);
      text += batch.toString('utf8', off + 8, off + 8 + len);
      off += 8 + ((len + 7) & ~7);
    }
    const parts = text.split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      const parsed = parseTraceLine(l);
      if (parsed && (pid === undefined || parsed.pid === pid)) lines.push(parsed);
    }
    wake();
  };

  if (signal?.aborted) {
    failure = signal.reason;
  } else {
    const file = path ?? tracefsPipe();
    if (opts.tracingOn) writeFileSync(join(dirname(file), 'tracing_on'), '1');
    stream = new native.NativeTracePipe(file, onBatch);
    signal?.addEventListener('abort', onAbort, { once: true });
  }

  const iterator: AsyncIterableIterator<TracePipeLine> & { onBatch: OnBatch } = {
    onBatch,
    next(): Promise<IteratorResult<TracePipeLine>> {
      if (waiter) return Promise.reject(new Error('tracePipe: one next() at a time'));
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
        // Keeps the process alive only while someone waits for a line.
        if (lines.length === 0 && stream) stream.ref();
        wake();
      });
    },
    return(): Promise<IteratorResult<TracePipeLine>> {
      done = true;
      lines.length = 0;
      finish();
      wake();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return iterator;
}
