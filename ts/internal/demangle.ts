// C++ names demangled by binutils' c++filt, in batches (one process for
// many names), cached for the life of the process. Where c++filt is not
// installed or fails, names stay mangled: no demangler of our own (the
// Itanium ABI grammar is large and a wrong demangling is worse than none).
import { execFileSync } from 'node:child_process';

const cache = new Map<string, string>();
let unavailable: string | undefined;

/** Names that look mangled (Itanium C++ ABI). */
export const isMangled = (name: string): boolean => name.startsWith('_Z');

/** Why demangling is off, if it is (c++filt missing or failing). */
export const demanglerProblem = (): string | undefined => unavailable;

/** Demangles `names` (mangled or not) in one c++filt run; unknown ones come back unchanged. */
export function demangleAll(names: Iterable<string>): void {
  if (unavailable) return;
  const todo = [...new Set([...names].filter((n) => isMangled(n) && !cache.has(n) && !n.includes('\n')))];
  if (todo.length === 0) return;
  try {
    const out = execFileSync('c++filt', [], { input: `${todo.join('\n')}\n`, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, stdio: ['pipe', 'pipe', 'ignore'] });
    const lines = out.split('\n');
    if (lines.length < todo.length) throw new Error(`c++filt gave ${lines.length} lines for ${todo.length} names`);
    todo.forEach((n, i) => cache.set(n, lines[i]!));
  } catch (e) {
    unavailable = `c++filt: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** The demangled name (after demangleAll() saw it), else the name itself. */
export function demangled(name: string): string {
  if (!isMangled(name)) return name;
  let d = cache.get(name);
  if (d === undefined) {
    demangleAll([name]);
    d = cache.get(name) ?? name;
  }
  return d;
}
