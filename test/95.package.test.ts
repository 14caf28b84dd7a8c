// The package as users get it: `npm pack` of the tracked sources (prepack
// compiles the TypeScript and prebuilds the addon), `npm install` of the
// tarball into an empty project, then a script and a generated skeleton
// that import 'libbpf-node', type-checked and run against the kernel. The
// addon must come from prebuilds/: npm may not run install scripts at all.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ROOT } from './helpers.js';

const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

describe('the npm package', function () {
  this.timeout(300_000);
  let work: string;
  before(() => {
    work = mkdtempSync(path.join(tmpdir(), 'lbn-pkg-'));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('packs with a prebuilt addon, installs into an empty project, type-checks and loads sock_example there', function () {
    // A copy of the tracked files, so packing builds nothing in this tree
    // (whose addon this process has loaded).
    const src = path.join(work, 'src');
    for (const f of run('git', ['ls-files', '-z'], ROOT).split('\0').filter(Boolean)) {
      if (!existsSync(path.join(ROOT, f))) continue; // deleted, not yet committed
      mkdirSync(path.dirname(path.join(src, f)), { recursive: true });
      copyFileSync(path.join(ROOT, f), path.join(src, f));
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(src, 'node_modules'));
    const tarball = run('npm', ['pack', '--silent', '--pack-destination', work], src).trim().split('\n').pop()!;
    assert.match(tarball, /^libbpf-node-.*\.tgz$/);
    const listing = run('tar', ['tzf', path.join(work, tarball)], work).split('\n');
    assert.ok(listing.includes('package/prebuilds/linux-x64/libbpf-node.node'), 'the tarball carries the prebuilt addon');
    assert.ok(listing.includes('package/dist/ts/index.d.ts'), 'and the type declarations');
    assert.ok(!listing.some((f) => f.startsWith('package/dist/test/')), 'but not the tests');
    assert.deepEqual(listing.filter((f) => f.endsWith('.map')), [], 'nor source maps, whose sources it does not ship');
    assert.deepEqual(listing.filter((f) => f.startsWith('package/bpf/')).sort(),
      ['package/bpf/sock_example.bpf.c', 'package/bpf/sock_example.bpf.o'], 'and of the BPF objects only the quick start\'s');
    for (const f of ['LICENSE', 'LICENSE-MIT', 'LICENSE-GPL-2.0', 'CHANGELOG.md', 'README.md', 'scripts/install.js']) {
      assert.ok(listing.includes(`package/${f}`), `the tarball carries ${f}`);
    }

    const app = path.join(work, 'app');
    mkdirSync(app);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(work, tarball)], app);
    const pkg = path.join(app, 'node_modules', 'libbpf-node');
    assert.equal(existsSync(path.join(pkg, 'build')), false, 'nothing was compiled at install');

    // The CLI of the installed package writes a skeleton that imports 'libbpf-node'.
    run(path.join(app, 'node_modules', '.bin', 'libbpf-node'),
      ['gen', 'skeleton', path.join(pkg, 'bpf', 'sock_example.bpf.o'), '-o', path.join(app, 'sock_example.skel.ts'), '--embed'], app);
    writeFileSync(path.join(app, 'main.ts'), [
      `import { BpfObject, libbpfVersion } from 'libbpf-node';`,
      `import { SockExampleSkeleton } from './sock_example.skel.js';`,
      `import { mapCounter } from 'libbpf-node/metrics';`,
      `const obj = new BpfObject(require.resolve('libbpf-node/package.json').replace(/package\\.json$/, 'bpf/sock_example.bpf.o')).load();`,
      `const fromFile: bigint | undefined = obj.map<number, bigint>('counts').lookup(6);`,
      `const metric = mapCounter(obj.map<number, bigint>('counts'), { name: 'packets_total', help: 'Packets' });`,
      `obj.close();`,
      `using skel = new SockExampleSkeleton().load();`,
      `skel.maps.counts.update(17, 5n);`,
      `const fromSkeleton: bigint | undefined = skel.maps.counts.lookup(17);`,
      `console.log(JSON.stringify({ libbpfVersion, fromFile: String(fromFile), fromSkeleton: String(fromSkeleton), type: skel.programs.count_packets.type, metric: metric.kind }));`,
    ].join('\n'));
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    run(process.execPath, [tsc, '--strict', '--target', 'ES2022', '--module', 'node16', '--moduleResolution', 'node16',
      '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--lib', 'ES2022,ESNext.Disposable',
      '--skipLibCheck', 'main.ts'], app);
    const out = JSON.parse(run(process.execPath, ['main.js'], app)) as Record<string, string>;
    assert.deepEqual(out, { libbpfVersion: out.libbpfVersion, fromFile: '0', fromSkeleton: '5', type: 'socket_filter', metric: 'counter' });
    // libbpf-node/metrics works without its optional peers installed.
    assert.equal(existsSync(path.join(app, 'node_modules', 'prom-client')), false);
    assert.match(out.libbpfVersion!, /^\d+\.\d+$/);
    assert.deepEqual(readdirSync(path.join(pkg, 'prebuilds')).filter((d) => d !== 'README.md'), ['linux-x64']);

    // Skeletons in ES module and CommonJS projects, the object embedded or
    // by path (beside the compiled skeleton, where the README says it must
    // sit), each type-checked with nodenext and run against the kernel.
    const objectFile = path.join(pkg, 'bpf', 'sock_example.bpf.o');
    for (const kind of ['esm', 'cjs'] as const) {
      const proj = path.join(work, `app-${kind}`);
      mkdirSync(proj);
      writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: `app-${kind}`, version: '1.0.0', private: true, ...(kind === 'esm' ? { type: 'module' } : {}) }));
      symlinkSync(path.join(app, 'node_modules'), path.join(proj, 'node_modules'));
      const gen = (out: string, ...extra: string[]): string =>
        run(path.join(app, 'node_modules', '.bin', 'libbpf-node'), ['gen', 'skeleton', objectFile, '-o', path.join(proj, out), ...extra], proj);
      gen('file.skel.ts', '--name', 'FileSkeleton');
      gen('embedded.skel.ts', '--name', 'EmbeddedSkeleton', '--embed');
      copyFileSync(objectFile, path.join(proj, 'sock_example.bpf.o'));
      const skel = readFileSync(path.join(proj, 'file.skel.ts'), 'utf8');
      assert.match(skel, kind === 'esm' ? /import\.meta\.url/ : /__dirname/, `a ${kind} skeleton finds its object the ${kind} way`);
      writeFileSync(path.join(proj, 'main.ts'), [
        `import { FileSkeleton } from './file.skel.js';`,
        `import { EmbeddedSkeleton } from './embedded.skel.js';`,
        `const out: string[] = [];`,
        `for (const S of [FileSkeleton, EmbeddedSkeleton]) {`,
        `  using skel = new S().load();`,
        `  skel.maps.counts.update(6, 41n);`,
        `  out.push(String(skel.maps.counts.lookup(6)! + 1n));`,
        `}`,
        `console.log(JSON.stringify(out));`,
      ].join('\n'));
      run(process.execPath, [tsc, '--strict', '--target', 'ES2022', '--module', 'nodenext', '--moduleResolution', 'nodenext',
        '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--lib', 'ES2022,ESNext.Disposable',
        '--skipLibCheck', 'main.ts'], proj);
      assert.deepEqual(JSON.parse(run(process.execPath, ['main.js'], proj)), ['42', '42'], `${kind}: both skeletons load and count`);
    }
  });
});
