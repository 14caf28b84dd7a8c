// libbpf's voice: what libbpf prints reaches JS through setLibbpfPrint()'s
// callback, or, by default, its warnings of calls that succeeded become
// process warnings (those of a failed call are in its BpfError's `log`).
// Native code queues the messages and delivers them on the event loop after
// the libbpf call returned (native/print.cc), from whatever thread printed.
import { addon } from './internal/addon.js';
import { invalidArgType, invalidArgValue } from './internal/errors.js';

/** libbpf's print levels (LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG). */
export type LibbpfPrintLevel = 'warn' | 'info' | 'debug';
/** A setLibbpfPrint() callback: one call per message, without its trailing newline. */
export type LibbpfPrintCallback = (level: LibbpfPrintLevel, message: string) => void;

/** Options of setLibbpfPrint(). */
export interface LibbpfPrintOptions {
  /** The most verbose level passed to the callback; default 'debug' (everything). */
  level?: LibbpfPrintLevel;
}

const LEVELS: readonly LibbpfPrintLevel[] = ['warn', 'info', 'debug'];

interface PrintAddon {
  setPrintHandler(fn: (batch: Message[], dropped: number) => void): boolean;
  setPrintLevel(level: number): void;
}
const native = addon as unknown as PrintAddon;

let callback: LibbpfPrintCallback | null = null;
// LIBBPF_NODE_DEBUG already copies everything to stderr: no second copy as warnings.
const debugEnv = /^(?!0$)./.test(process.env['LIBBPF_NODE_DEBUG'] ?? '');

type Message = [level: number, text: string, failed: boolean, group: number];

// The warnings of one successful call make one process warning: its last
// message (libbpf's conclusion, e.g. "... BTF is optional, ignoring.") as
// the message, every message as the detail. A message may be a whole dump
// (libbpf 1.7 prints the kernel's BTF log as one warning and the
// conclusion at info level): then its first line, so the message stays one line.
function warn(lines: string[]): void {
  if (lines.length === 0) return;
  const message = lines[lines.length - 1]!.split('\n')[0]!;
  process.emitWarning(message, { type: 'LibbpfWarning', code: 'LIBBPF_WARN', ...(lines.length > 1 ? { detail: lines.join('\n') } : {}) });
}

function deliver(batch: Message[], dropped: number): void {
  const fn = callback;
  let pending: string[] = [];
  let group = -1;
  for (const [level, text, failed, g] of batch) {
    const message = text.replace(/\n$/, '');
    if (fn) {
      fn(LEVELS[level] ?? 'debug', message);
      continue;
    }
    if (level !== 0 || failed || debugEnv) continue;
    if (g !== group) {
      warn(pending);
      pending = [];
      group = g;
    }
    pending.push(message);
  }
  warn(pending);
  if (dropped > 0 && fn) fn('warn', `libbpf-node: ${dropped} libbpf message(s) dropped (the event loop was blocked)`);
}

// The hook is per process: the first thread to load the library has it;
// others (worker threads) leave its level alone.
const installed = native.setPrintHandler(deliver);
if (installed) native.setPrintLevel(0);

/**
 * Routes libbpf's messages (libbpf_set_print) to `fn`, up to `opts.level`
 * (default 'debug'), as libbpf-rs's `set_print`. `null` restores the
 * default: libbpf's warnings of calls that succeeded become process
 * warnings (`process.emitWarning`, type 'LibbpfWarning', code
 * 'LIBBPF_WARN'); the rest is dropped. Returns the previous callback.
 *
 * Messages arrive asynchronously, on the event loop, after the libbpf call
 * that printed them returned (libbpf may print from any thread). A failed
 * call's messages still reach `fn`; its BpfError's `log` has them too.
 * The hook is per process: in worker threads only the first thread that
 * loaded the library gets the messages. `LIBBPF_NODE_DEBUG=1` still copies
 * everything to stderr as it is printed.
 */
export function setLibbpfPrint(fn: LibbpfPrintCallback | null, opts: LibbpfPrintOptions = {}): LibbpfPrintCallback | null {
  if (fn !== null && typeof fn !== 'function') invalidArgType('fn', 'a function or null', fn);
  if (opts === null || typeof opts !== 'object') invalidArgType('opts', 'an object', opts);
  const level = opts.level ?? 'debug';
  if (!LEVELS.includes(level)) invalidArgValue('opts.level', level, "must be 'warn', 'info' or 'debug'");
  const previous = callback;
  callback = fn;
  if (installed) native.setPrintLevel(fn ? LEVELS.indexOf(level) : 0);
  return previous;
}
