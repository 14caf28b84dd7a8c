// examples/metrics-server scraped by a real Prometheus (Debian's package):
// the test starts both on loopback, makes traffic, and asks Prometheus' HTTP
// API for the series until they hold what the kernel's maps hold, read here
// through the maps' ids. Everything is bounded in time and stopped in
// after(). CI sets LBN_REQUIRE=prometheus on the host, so a missing binary
// fails there instead of skipping.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfMap } from '../ts/index.js';
import { ROOT, itIf } from './helpers.js';

const PROMETHEUS = '/usr/bin/prometheus';
const hasPrometheus = existsSync(PROMETHEUS) || `no ${PROMETHEUS} (Debian package prometheus)`;

interface Sample { metric: Record<string, string>; value: [number, string] }

async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

/** Waits for `what` to return a value, polling, for at most `ms`; the last reason in the failure. */
async function until<T>(ms: number, what: () => Promise<T | string>): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    const r = await what().catch((e: unknown) => `error: ${String(e)}`);
    if (typeof r !== 'string') return r;
    last = r;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${last}`);
    await sleep(250);
  }
}

/** Stops a child: SIGTERM, then SIGKILL if it is still there after `ms`; resolves with its exit code. */
async function stop(child: ChildProcess | undefined, ms = 5000): Promise<number | null> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = await exited as [number | null];
  clearTimeout(t);
  return code;
}

describe('metrics: examples/metrics-server scraped by a real Prometheus', function () {
  this.timeout(90_000);
  let dir: string;
  let server: ChildProcess | undefined;
  let prometheus: ChildProcess | undefined;
  let serverOut = '';
  let api = '';
  let target = '';
  let ids: { hists: number; counts: number };

  async function query(q: string): Promise<Sample[]> {
    const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = await res.json() as { status: string; data: { resultType: string; result: Sample[] }; error?: string };
    if (body.status !== 'success') throw new Error(`${q}: ${body.error ?? res.status}`);
    return body.data.result;
  }

  before(async function () {
    if (hasPrometheus !== true) return;
    dir = mkdtempSync(path.join(tmpdir(), 'lbn-prometheus-'));
    server = spawn(process.execPath, [path.join(ROOT, 'dist', 'examples', 'metrics-server.js'), '--port', '0'],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    server.stdout!.setEncoding('utf8').on('data', (s: string) => { serverOut += s; });
    const [url, hists, counts] = await until(15_000, async () => {
      const m = /hists id (\d+), sock_example counts id (\d+)\nServing (http:\/\/\S+)\/metrics/.exec(serverOut);
      if (server!.exitCode !== null) throw new Error(`metrics-server exited (${server!.exitCode}): ${serverOut}`);
      return m ? [m[3]!, Number(m[1]), Number(m[2])] as const : `metrics-server said: ${JSON.stringify(serverOut)}`;
    });
    ids = { hists, counts };
    target = url.replace('http://', '');

    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: libbpf-node',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'));
    const log = openSync(path.join(dir, 'prometheus.log'), 'w');
    prometheus = spawn(PROMETHEUS, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`, '--storage.tsdb.retention.time=1h',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    await until(30_000, async () => {
      if (prometheus!.exitCode !== null) throw new Error(`prometheus exited: ${readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-2000)}`);
      const res = await fetch(`${api}/-/ready`);
      return res.ok ? true : `/-/ready: ${res.status}`;
    });
  });

  after(async function () {
    const p = await stop(prometheus);
    const s = await stop(server);
    if (dir) rmSync(dir, { recursive: true, force: true });
    // The server stops on SIGTERM by itself, closing its BPF objects: status 0.
    if (server) assert.equal(s, 0, `metrics-server on SIGTERM: status ${s}; ${serverOut}`);
    if (server) assert.match(serverOut, /Stopped\.\n$/);
    void p;
  });

  itIf('prometheus', hasPrometheus)('Prometheus scrapes the example: the target is up', async function () {
    await until(20_000, async () => {
      const r = await query('up{job="libbpf-node"}');
      return r[0]?.value[1] === '1' ? true : `up: ${JSON.stringify(r)}`;
    });
  });

  itIf('prometheus', hasPrometheus)('sockstat_packets_total{protocol="udp"} reaches what the kernel counted for our datagrams', async function () {
    const N = 20;
    const rx = createSocket('udp4');
    const tx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    let got = 0;
    const all = new Promise<void>((r) => rx.on('message', () => ++got === N && r()));
    for (let i = 0; i < N; i++) tx.send(`datagram ${i}`, rx.address().port, '127.0.0.1');
    await all;
    rx.close();
    tx.close();
    using counts = BpfMap.fromId(ids.counts);
    const udpInMap = (): number => {
      const v = counts.lookup(17) as unknown;
      return Number(typeof v === 'bigint' ? v : (v as Buffer).readBigUInt64LE(0));
    };
    assert.ok(udpInMap() >= 2 * N, `each datagram passes lo's raw socket twice: ${udpInMap()}`);
    // Other UDP on lo counts too; the series holds the map's value once a scrape follows the last packet.
    const v = await until(20_000, async () => {
      const want = udpInMap();
      const r = await query('sockstat_packets_total{protocol="udp",interface="lo"}');
      const got = Number(r[0]?.value[1]);
      return got === want ? got : `Prometheus has ${r[0]?.value[1]}, the map ${want}`;
    });
    assert.ok(v >= 2 * N);
  });

  itIf('prometheus', hasPrometheus)('runqlat_latency_seconds: the count Prometheus scraped lies between two reads of the map, le buckets cumulative', async function () {
    using hists = BpfMap.fromId(ids.hists);
    const total = (): number => {
      const v = hists.lookup(0) as unknown;
      if (v && typeof v === 'object' && 'slots' in v) return Array.from((v as { slots: Uint32Array }).slots).reduce((a, b) => a + b, 0);
      const b = v as Buffer;
      let n = 0;
      for (let i = 0; i < b.length; i += 4) n += b.readUInt32LE(i);
      return n;
    };
    const before = total();
    const t0 = Date.now() / 1000;
    // A sample scraped after `before` was read: timestamp() is the scrape's time.
    const count = await until(20_000, async () => {
      const r = await query('runqlat_latency_seconds_count and timestamp(runqlat_latency_seconds_count) > ' + String(t0 + 0.01));
      return r[0] ? Number(r[0].value[1]) : 'no scrape yet after the first read';
    });
    const after = total();
    assert.ok(before <= count && count <= after, `map ${before} … ${after}, Prometheus ${count}`);
    assert.ok(count > 0, 'the scheduler ran tasks');

    const buckets = (await query('runqlat_latency_seconds_bucket'))
      .map((s) => [s.metric['le'] === '+Inf' ? Infinity : Number(s.metric['le']), Number(s.value[1])] as const)
      .sort((a, b) => a[0] - b[0]);
    assert.equal(buckets.length, 26, '25 finite bounds (slot 25 is open) and +Inf');
    assert.deepEqual(buckets.slice(0, 3).map(([le]) => le), [0.000001, 0.000003, 0.000007]);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]![1] >= buckets[i - 1]![1], 'cumulative');
    assert.equal(buckets.at(-1)![0], Infinity);
  });

  itIf('prometheus', hasPrometheus)('bpf_program_runs_total and _run_time_seconds_total: runqlat\'s programs ran, with statistics on', async function () {
    const runs = await until(20_000, async () => {
      const r = await query('bpf_program_runs_total{program="sched_switch"}');
      const v = Number(r[0]?.value[1]);
      return v > 0 ? v : `sched_switch runs: ${JSON.stringify(r)}`;
    });
    assert.ok(runs > 0);
    const names = (await query('bpf_program_run_time_seconds_total')).map((s) => s.metric['program']).sort();
    assert.deepEqual(names, ['count_packets', 'sched_switch', 'sched_wakeup', 'sched_wakeup_new']);
    const t = await query('bpf_program_run_time_seconds_total{program="sched_switch"}');
    assert.ok(Number(t[0]!.value[1]) > 0);
  });

  itIf('prometheus', hasPrometheus)('the README\'s Grafana query: histogram_quantile over rate() gives a latency within the buckets', async function () {
    // The README's first PromQL line, over 10 s instead of 5 min (the test has seconds of data).
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const first = /```promql\n(.*)\n/.exec(readme)?.[1];
    assert.equal(first, 'histogram_quantile(0.99, sum by (instance, le) (rate(runqlat_latency_seconds_bucket[5m])))');
    const q = first.replace('[5m]', '[10s]');
    const p99 = await until(20_000, async () => {
      const r = await query(q);
      const v = Number(r[0]?.value[1]);
      return Number.isFinite(v) && v > 0 ? v : `${q}: ${JSON.stringify(r)}`;
    });
    assert.ok(p99 > 0 && p99 <= 33.554431, `p99 ${p99} s`);
  });
});

describe('metrics: examples/metrics-server as a command-line tool', function () {
  this.timeout(30_000);
  const example = path.join(ROOT, 'dist', 'examples', 'metrics-server.js');
  const run = (args: string[], asNobody = false): SpawnSyncReturns<string> => asNobody
    ? spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, example, ...args], { encoding: 'utf8', timeout: 20_000 })
    : spawnSync(process.execPath, [example, ...args], { encoding: 'utf8', timeout: 20_000 });

  it('--help lists --port, --host and examples; a bad port is one line and exit status 2', function () {
    const help = run(['--help']);
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, /^Usage: metrics-server \[options\]\n/);
    assert.match(help.stdout, /--port VALUE +TCP port/);
    assert.match(help.stdout, /--host VALUE +address to listen on \(default 127\.0\.0\.1/);
    const bad = run(['--port', '70000']);
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr, "metrics-server: invalid --port '70000': expected a number from 0 to 65535\nTry 'metrics-server --help' for more information.\n");
  });

  it('a port in use: one line naming it, exit status 1 (the BPF objects closed on the way out)', async function () {
    const busy = createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    try {
      const { port } = busy.address() as { port: number };
      const r = run(['--port', String(port)]);
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.equal(r.stderr, `metrics-server: EADDRINUSE: listen EADDRINUSE: address already in use 127.0.0.1:${port}\n`);
    } finally {
      busy.close();
    }
  });

  it('without privileges: one line with the cause and the hint', function () {
    const r = run(['--port', '0'], true);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^metrics-server: .*EPERM.*run as root, or with CAP_BPF/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
