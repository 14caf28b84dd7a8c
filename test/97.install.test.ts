// Installing and loading on machines that lack something: the system
// libbpf hidden in a mount namespace (an overlay whiteout over the library
// directory), the build tools hidden from PATH, and the floors the README
// declares checked against the addon's own symbol versions.
import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ROOT, itIf } from './helpers.js';

// The addon this checkout loads (build/Release, else prebuilds/).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addonPath = (require('node-gyp-build') as { path(dir: string): string }).path(ROOT);

/** Where the dynamic loader finds libbpf.so.1 for the addon, or why the hiding test cannot run. */
function libbpfDir(): string | { reason: string } {
  const needed = execFileSync('readelf', ['-d', addonPath], { encoding: 'utf8' });
  if (!/\[libbpf\.so\.1\]/.test(needed)) return { reason: `${path.basename(addonPath)} links libbpf statically` };
  const m = /libbpf\.so\.1 => (\S+)/.exec(execFileSync('ldd', [addonPath], { encoding: 'utf8' }));
  if (!m) return { reason: 'ldd does not resolve libbpf.so.1' };
  return path.dirname(m[1]!);
}

const dir = libbpfDir();
const hideable: true | string = typeof dir === 'string' ? true : dir.reason;

/** Runs `node ARGS` in a new mount namespace where libbpf.so.1 (and its target) do not exist, with PATH = `pathEnv`. */
function withoutLibbpf(args: string[], pathEnv: string): { status: number | null; stdout: string; stderr: string } {
  const lib = dir as string;
  const work = mkdtempSync(path.join(tmpdir(), 'lbn-nolibbpf-'));
  try {
    const upper = path.join(work, 'up');
    mkdirSync(upper);
    mkdirSync(path.join(work, 'work'));
    // A whiteout (a 0:0 character device in the upper layer) hides a file of the lower one.
    const names = execFileSync('sh', ['-c', `cd ${lib} && ls libbpf.so.1*`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const script = [
      ...names.map((n) => `mknod ${upper}/${n} c 0 0`),
      `mount -t overlay overlay -o lowerdir=${lib},upperdir=${upper},workdir=${work}/work ${lib}`,
      `PATH=${pathEnv} exec "$0" "$@"`,
    ].join(' && ');
    const r = spawnSync('unshare', ['-m', 'sh', '-c', script, process.execPath, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

describe('install and load where something is missing', function () {
  this.timeout(60_000);

  itIf('dynamicLibbpf', hideable)('without libbpf.so.1: the load error names the runtime package and the loader\'s reason, with a code', function () {
    const r = withoutLibbpf(['-e', `
      try { require(${JSON.stringify(path.join(ROOT, 'dist', 'ts', 'index.js'))}); console.log('loaded'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: e.cause && e.cause.code })); }`], process.env.PATH!);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as { code: string; message: string; cause: string };
    assert.equal(got.code, 'ERR_LIBBPF_NODE_LOAD');
    assert.equal(got.cause, 'ERR_DLOPEN_FAILED');
    assert.match(got.message, /libbpf\.so\.1: cannot open shared object file/);
    assert.match(got.message, /apt-get install libbpf1 /);
    assert.match(got.message, /dnf install libbpf /);
    assert.doesNotMatch(got.message, /libbpf-dev/, 'a runtime user needs only the runtime package');
  });

  itIf('dynamicLibbpf', hideable)('install step without libbpf.so.1 and without build tools: names every package to install, not node-gyp\'s Python error', function () {
    const bin = mkdtempSync(path.join(tmpdir(), 'lbn-bin-'));
    try {
      symlinkSync(process.execPath, path.join(bin, 'node'));
      const r = withoutLibbpf([path.join(ROOT, 'scripts', 'install.js')], bin);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /the prebuilt addon does not load here \(libbpf\.so\.1: cannot open shared object file/);
      assert.match(r.stderr, /missing python3 \(node-gyp\); make; a C\+\+ compiler; pkg-config; libbpf 1\.1 or newer/);
      assert.match(r.stderr, /apt-get install python3 make g\+\+ pkg-config libbpf-dev libelf-dev zlib1g-dev /);
      assert.match(r.stderr, /dnf install python3 make gcc-c\+\+ pkgconf-pkg-config libbpf-devel elfutils-libelf-devel zlib-devel /);
      assert.match(r.stderr, /install only the runtime library: apt-get install libbpf1/);
      assert.doesNotMatch(r.stderr, /You need to install the latest version of Python/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('install step where the addon loads: builds nothing and exits 0', function () {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'install.js')], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: '/nonexistent' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  // The floors are the prebuild's, which links the system libbpf; an addon
  // with a newer libbpf linked in (CI's libbpf 1.7 run) has its own.
  itIf('dynamicLibbpf', hideable)('the addon needs no newer glibc, libstdc++ or libbpf than the README declares', function () {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const declared = (name: string): string => {
      const m = new RegExp(`\\| ${name} \\| ([\\d.]+) `).exec(readme);
      assert.ok(m, `README's requirements table has a '${name}' row`);
      return m[1]!;
    };
    const versions = execFileSync('objdump', ['-T', addonPath], { encoding: 'utf8' });
    const newest = (prefix: string): string => [...versions.matchAll(new RegExp(`\\(${prefix}_([\\d.]+)\\)`, 'g'))]
      .map((m) => m[1]!).sort((a, b) => cmp(b, a))[0] ?? '0';
    const cmp = (a: string, b: string): number => {
      const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
      return 0;
    };
    for (const [row, prefix] of [['glibc', 'GLIBC'], ['libstdc\\+\\+ \\(GLIBCXX\\)', 'GLIBCXX'], ['libbpf', 'LIBBPF']] as const) {
      const need = newest(prefix);
      const floor = declared(row);
      assert.ok(cmp(need, floor) <= 0, `${path.basename(addonPath)} needs ${prefix}_${need}, the README declares ${floor}`);
    }
  });
});
