// The examples behave like bcc's tools: --help exits 0, a bad argument is
// one line and exit status 2, Ctrl-C prints the final output and exits 0,
// and without privileges the error is one line with the hint, no stack.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { libbpfVersion } from '../ts/index.js';
import { ROOT } from './helpers.js';

const example = (name: string): string => path.join(ROOT, 'dist', 'examples', `${name}.js`);

function run(name: string, args: string[], opts: { asNobody?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const [cmd, argv] = opts.asNobody
    ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, example(name), ...args]]
    : [process.execPath, [example(name), ...args]];
  const r = spawnSync(cmd as string, argv as string[], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Starts the example, waits for `ready` on stdout, sends SIGINT, and returns what it printed and its exit. */
function interrupt(name: string, args: string[], ready: RegExp): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [example(name), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} never printed ${ready}: ${stdout}${stderr}`)); }, 25_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && ready.test(stdout)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const TOOLS: { name: string; bad: string[]; badMessage: RegExp }[] = [
  { name: 'sockstat', bad: ['--seconds', 'abc'], badMessage: /^sockstat: invalid --seconds 'abc'/ },
  { name: 'runqlat', bad: ['1', 'x'], badMessage: /^runqlat: invalid count 'x'/ },
  { name: 'uprobe-node', bad: ['--seconds', '0'], badMessage: /^uprobe-node: invalid --seconds '0'/ },
  { name: 'execsnoop', bad: ['--count', '1.5'], badMessage: /^execsnoop: invalid --count '1.5': expected a whole number/ },
];

describe('examples as command-line tools', function () {
  this.timeout(40_000);
  for (const t of TOOLS) {
    describe(t.name, function () {
      it('--help prints usage, options and examples, and exits 0', function () {
        const r = run(t.name, ['--help']);
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, new RegExp(`^Usage: ${t.name} \\[options\\]`));
        assert.match(r.stdout, /\n {2}-h, --help +show this help and exit\n/);
        assert.match(r.stdout, /\nExamples:\n {2}\S/);
        assert.equal(r.stderr, '');
      });

      it('a bad value or an unknown option is one line and exit status 2', function () {
        for (const [args, message] of [[t.bad, t.badMessage], [['--bogus'], new RegExp(`^${t.name}: Unknown option '--bogus'`)]] as const) {
          const r = run(t.name, [...args]);
          assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
          assert.equal(r.stdout, '');
          const lines = r.stderr.trim().split('\n');
          assert.match(lines[0]!, message);
          assert.equal(lines[1], `Try '${t.name} --help' for more information.`);
          assert.equal(lines.length, 2);
        }
      });

      it('without privileges: one line naming the cause and the hint, no stack trace', function () {
        const r = run(t.name, { runqlat: ['1', '1'], execsnoop: ['-c', '1'] }[t.name] ?? ['--seconds', '1'], { asNobody: true });
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`^${t.name}: .*EPERM.*this process may not use BPF: run as root, or with CAP_BPF`));
        assert.doesNotMatch(r.stderr, /\n\s+at /);
        assert.equal(r.stderr.trim().split('\n').length, 1);
      });
    });
  }

  it('sockstat: Ctrl-C prints the last counts once and exits 0', async function () {
    const r = await interrupt('sockstat', ['--seconds', '30'], /packets\n/);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 2);
    // The final line repeats counts at least as large as the last periodic one.
    const counts = (l: string): number[] => [...l.matchAll(/\d+/g)].map((m) => Number(m[0]));
    const [last, prev] = [counts(lines.at(-1)!), counts(lines.at(-2)!)];
    assert.match(lines.at(-1)!, /^TCP \d+ UDP \d+ ICMP \d+ packets$/);
    last.forEach((n, i) => assert.ok(n >= prev[i]!, `${lines.at(-1)} vs ${lines.at(-2)}`));
  });

  it('runqlat: Ctrl-C prints the histogram of the interval cut short, as bcc does', async function () {
    const r = await interrupt('runqlat', [], /Hit Ctrl-C to end\.\n/);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /usecs +: count +distribution\n/);
    const counted = [...r.stdout.matchAll(/-> \d+ +: (\d+) /g)].reduce((a, m) => a + Number(m[1]), 0);
    assert.ok(counted > 0, r.stdout);
  });

  it('execsnoop: Ctrl-C stops tracing, prints the count of execs and exits 0', async function () {
    const r = await interrupt('execsnoop', ['-x'], /PCOMM +PID +PPID +RET ARGS\n/);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^\d+ execs, \d+ dropped by the BPF side\n$/);
  });

  it('uprobe-node: Ctrl-C prints the total seen by the uprobe, equal to the calls made', async function () {
    const r = await interrupt('uprobe-node', ['--seconds', '30'], /calls\/s/);
    assert.equal(r.code, 0, r.stderr);
    const m = /^total: (\d+) uv_fs_stat calls seen, (\d+) fs.statSync calls made$/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(m[1], m[2]);
    assert.ok(Number(m[1]) >= 100);
  });
});

describe('the libbpf-node command', function () {
  this.timeout(180_000); // a dozen node processes: minutes under emulation
  const cli = (...args: string[]): { status: number | null; stdout: string; stderr: string } => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist', 'ts', 'cli.js'), ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('--help and -h print the commands on stdout, exit 0', function () {
    for (const flag of ['--help', '-h']) {
      const r = cli(flag);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /^Usage: libbpf-node COMMAND \[options\]\n[^]*gen skeleton OBJECT\.bpf\.o/);
      assert.equal(r.stderr, '');
    }
  });

  it('--version names the package version and the libbpf in use', function () {
    const r = cli('--version');
    assert.equal(r.status, 0, r.stderr);
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(r.stdout, `libbpf-node ${pkg.version} (libbpf ${libbpfVersion})\n`);
  });

  it('gen skeleton --help is the command\'s help, exit 0 (not a file named --help)', function () {
    const r = cli('gen', 'skeleton', '--help');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: libbpf-node gen skeleton OBJECT\.bpf\.o \[options\]/);
    assert.match(r.stdout, /--module esm\|cjs/);
  });

  it('misuse is exit 2 with one line and a pointer to --help; a failure is exit 1', function () {
    for (const args of [[], ['--bogus'], ['gen'], ['gen', 'skeleton'], ['gen', 'skeleton', 'a.o', '--module', 'amd'], ['gen', 'skeleton', 'a.o', '--event', 'x']]) {
      const r = cli(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^libbpf-node: .*\nTry 'libbpf-node --help'\.\n$/);
    }
    const r = cli('gen', 'skeleton', '/nonexistent.bpf.o');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^libbpf-node: bpf_object__open_file\(\/nonexistent\.bpf\.o\) failed: ENOENT/);
  });
});
