// Helpers of the introspection tests (32-35).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { release } from 'node:os';
import * as path from 'node:path';

/** A cgroup v2 directory of this process's own (mounting cgroup2 if needed), and how to remove it. */
export function scratchCgroup(name: string): { dir: string; remove(): void } {
  let root = readFileSync('/proc/self/mounts', 'utf8').split('\n').map((l) => l.split(' ')).find((f) => f[2] === 'cgroup2')?.[1];
  let mountedHere = false;
  if (!root) {
    root = `/tmp/lbn-cgroup2-${process.pid}`;
    mkdirSync(root, { recursive: true });
    execFileSync('mount', ['-t', 'cgroup2', 'none', root]);
    mountedHere = true;
  }
  const dir = path.join(root, `lbn-${name}-${process.pid}`);
  mkdirSync(dir);
  return {
    dir,
    remove(): void {
      rmdirSync(dir);
      if (mountedHere) {
        execFileSync('umount', [root]);
        rmdirSync(root);
      }
    },
  };
}

/** Whether the running kernel is at least major.minor. */
export function kernelAtLeast(major: number, minor: number): boolean {
  const [a = 0, b = 0] = release().split('.').map((n) => parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

