// What the examples share to behave like bcc's tools: node:util's parseArgs
// (strict: unknown flags are errors) with a --help that lists options and
// examples, numbers checked, Ctrl-C turned into an AbortSignal so a tool
// can print its last output and detach, and failures printed as one line
// (with the privilege hint when that is the cause) instead of a stack trace.
//
// This file is part of the examples, not of the library: copy it along with
// an example. Outside this repository, import from 'libbpf-node'.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BpfError } from '../ts/index.js';

type Options = NonNullable<ParseArgsConfig['options']>;

export interface ToolSpec<O extends Options> {
  /** The command's name, as in `Usage: NAME …`. */
  name: string;
  /** One line: what the tool does. */
  summary: string;
  /** Positional arguments, e.g. `[interval [count]]`. */
  positionals?: string;
  /** The options, for parseArgs, each with a description for --help. */
  options: O;
  describe: { [K in keyof O]: string };
  /** Example command lines with what they do, printed under --help. */
  examples: [string, string][];
}

/** What parseTool gives: values typed from the options (strings and booleans), and the positionals. */
export interface ParsedTool<O extends Options> {
  values: { [K in keyof O]?: O[K]['type'] extends 'boolean' ? boolean : string };
  positionals: string[];
}

/** A bad command line: printed as `NAME: message` and a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function help<O extends Options>(spec: ToolSpec<O>): string {
  const flag = (k: string, o: Options[string]): string =>
    `${o.short ? `-${o.short}, ` : '    '}--${k}${o.type === 'string' ? ' VALUE' : ''}`;
  const opts = Object.entries(spec.options).map(([k, o]) => [flag(k, o), spec.describe[k as keyof O]] as const);
  opts.push(['-h, --help', 'show this help and exit']);
  const w = Math.max(...opts.map(([f]) => f.length)) + 2;
  const ew = Math.max(...spec.examples.map(([c]) => c.length)) + 2;
  return [
    `Usage: ${spec.name} [options]${spec.positionals ? ` ${spec.positionals}` : ''}`,
    '',
    spec.summary,
    '',
    'Options:',
    ...opts.map(([f, d]) => `  ${f.padEnd(w)}${d}`),
    '',
    'Examples:',
    ...spec.examples.map(([c, d]) => `  ${c.padEnd(ew)}# ${d}`),
    '',
  ].join('\n');
}

/**
 * Parses argv like a tool: `--help` prints the help and exits 0; unknown
 * options, missing values and extra positionals exit 2 with one line.
 */
export function parseTool<O extends Options>(spec: ToolSpec<O>, argv = process.argv.slice(2)): ParsedTool<O> {
  const options: Options = { ...spec.options, help: { type: 'boolean', short: 'h' } };
  try {
    const parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals !== undefined });
    if (parsed.values['help'] === true) {
      process.stdout.write(help(spec));
      process.exit(0);
    }
    return parsed as unknown as ParsedTool<O>;
  } catch (e) {
    return usageExit(spec.name, e);
  }
}

function usageExit(name: string, e: unknown): never {
  process.stderr.write(`${name}: ${(e as Error).message}\nTry '${name} --help' for more information.\n`);
  process.exit(2);
}

/** A number from the command line, or a UsageError naming the option. */
export function numberArg(what: string, text: string | undefined, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`invalid ${what} '${text}': expected a number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`);
  }
  return n;
}

/** An integer from the command line (see numberArg). */
export function intArg(what: string, text: string | undefined, dflt: number, min: number, max?: number): number {
  if (text === undefined) return dflt;
  const n = numberArg(what, text, dflt, min, max);
  if (!Number.isInteger(n)) throw new UsageError(`invalid ${what} '${text}': expected a whole number`);
  return n;
}

/**
 * Runs a tool's main with a signal that Ctrl-C (or SIGTERM) aborts once: the
 * tool prints its final output and closes what it attached. A second Ctrl-C
 * ends the process at once. Errors become one line on stderr and exit 1.
 */
export function runTool(name: string, main: (signal: AbortSignal) => Promise<void>): void {
  const ac = new AbortController();
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    ac.abort();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  main(ac.signal).then(
    () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
    (e: unknown) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (e instanceof UsageError) usageExit(name, e);
      process.stderr.write(`${name}: ${oneLine(e)}\n`);
      process.exitCode = 1;
    });
}

/** The error's first line, with its code, and the library's privilege hint when it has one. */
function oneLine(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const lines = e.message.split('\n');
  const hint = lines.find((l) => /CAP_BPF|root/.test(l) && l !== lines[0]);
  // A BpfError's first line already names the operation, the errno and the cause.
  const code = e instanceof BpfError || !(e as NodeJS.ErrnoException).code ? '' : `${(e as NodeJS.ErrnoException).code}: `;
  return `${code}${lines[0]}${hint ? `\n  ${hint.trim()}` : ''}`;
}

/** Resolves after `ms`, or early (without throwing) when the signal aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
