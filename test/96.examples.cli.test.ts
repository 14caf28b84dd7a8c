// The examples behave like bcc's tools: Ctrl-C prints the final output and
// exits 0, and without privileges the error is one line with the hint, no
// stack. (--help and bad arguments, which involve no kernel: test/94.)
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
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

const TOOLS = ['sockstat', 'runqlat', 'uprobe-node', 'execsnoop'];

describe('examples as command-line tools', function () {
  this.timeout(40_000);
  for (const name of TOOLS) {
    describe(name, function () {
      it('without privileges: one line naming the cause and the hint, no stack trace', function () {
        const r = run(name, { runqlat: ['1', '1'], execsnoop: ['-c', '1'] }[name] ?? ['--seconds', '1'], { asNobody: true });
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, new RegExp(`^${name}: .*EPERM.*this process may not use BPF: run as root, or with CAP_BPF`));
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
