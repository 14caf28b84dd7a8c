// Shared test setup: where the BPF objects are, the filesystems the kernel
// features need, and fd accounting for leak checks.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { FeatureResult } from '../ts/index.js';

export const ROOT = path.join(__dirname, '..', '..');
export const BPF_DIR = path.join(ROOT, 'bpf');
export const obj = (name: string): string => path.join(BPF_DIR, `${name}.bpf.o`);

function mounted(dir: string, fstype: string): boolean {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => {
      const [, where, type] = l.split(' ');
      return where === dir && type === fstype;
    });
}

function mount(fstype: string, dir: string): void {
  if (mounted(dir, fstype)) return;
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', fstype, fstype, dir]);
}

/** bpffs at /sys/fs/bpf, for pins. */
export function ensureBpffs(): string {
  mount('bpf', '/sys/fs/bpf');
  return '/sys/fs/bpf';
}

/** tracefs, which libbpf reads tracepoint ids from. */
export function ensureTracefs(): void {
  if (existsSync('/sys/kernel/tracing/events')) return;
  mount('tracefs', '/sys/kernel/tracing');
}

/** A pin path unique to this process. */
export function pinPath(name: string): string {
  return path.join(ensureBpffs(), `libbpf-node-test-${process.pid}-${name}`);
}

/** bpftool's JSON answer to `bpftool -j ARGS`. */
export function bpftool<T>(...args: string[]): T {
  return JSON.parse(execFileSync('bpftool', ['-j', ...args], { encoding: 'utf8' })) as T;
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Runs `fn` and checks that it left no fd open. */
export function withoutFdLeak(fn: () => void): void {
  const before = openFds();
  fn();
  const after = openFds();
  if (after !== before) throw new Error(`fd leak: ${before} fds before, ${after} after`);
}

/** Asserts `fn` throws an error with these properties. */
export function throwsWith(fn: () => unknown, props: Record<string, unknown>, Ctor?: new (...a: never[]) => Error): Error {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new Error(`expected an error with ${JSON.stringify(props)}, nothing was thrown`);
  if (Ctor && !(caught instanceof Ctor)) throw new Error(`expected a ${Ctor.name}, got ${String(caught)}`);
  for (const [k, v] of Object.entries(props)) {
    const got = (caught as Record<string, unknown>)[k];
    const ok = v instanceof RegExp ? typeof got === 'string' && v.test(got) : got === v;
    if (!ok) throw new Error(`error.${k}: expected ${String(v)}, got ${String(got)} (${String(caught)})`);
  }
  return caught as Error;
}

// Kernel features CI says this kernel has (LBN_REQUIRE=kprobes,trampolines,...,
// names of `features`): their tests must run, so a kernel that lost one
// fails instead of skipping.
const required = new Set((process.env.LBN_REQUIRE ?? '').split(',').map((s) => s.trim()).filter(Boolean));

/**
 * `it` where the probe said yes; elsewhere a skipped test whose title ends
 * with the probe's reason. A feature named in LBN_REQUIRE never skips: its
 * test fails with the reason.
 */
export function itIf(feature: string, result: FeatureResult): Mocha.TestFunction {
  if (result === true) return it;
  if (required.has(feature)) {
    return ((title: string) => it(`${title} — ${feature} is required on this kernel`, () => {
      throw new Error(`LBN_REQUIRE names ${feature}, but the probe says: ${result}`);
    })) as unknown as Mocha.TestFunction;
  }
  return ((title: string, fn?: Mocha.Func) => it.skip(`${title} — skipped: ${result}`, fn)) as unknown as Mocha.TestFunction;
}

/** Whether CI requires `feature` of this kernel. */
export const isRequired = (feature: string): boolean => required.has(feature);
