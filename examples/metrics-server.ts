// metrics-server: BPF maps as Prometheus metrics, served on /metrics for a
// Prometheus server to scrape (libbpf-node/metrics on prom-client). It runs
// runqlat (run queue latency, a log2 histogram) and sock_example (packets
// per IP protocol on an interface), and exports what the kernel holds at
// each scrape:
//
//   runqlat_latency_seconds_bucket{le="…"}   run queue latency (histogram)
//   sockstat_packets_total{protocol="udp"}   packets seen on the interface
//   bpf_program_runs_total{program="…"}      runs of each of its programs
//   bpf_program_run_time_seconds_total{…}    and the time they took
//
// The last two need the kernel's run-time statistics, which the server
// turns on while it runs (enableStats(); they cost a little on every run of
// every BPF program on the machine); --no-stats leaves them off.
//
//   npm run metrics-server                           # http://127.0.0.1:9435/metrics
//   npm run metrics-server -- --port 0               # any free port (printed)
//   npm run metrics-server -- --help
//
// It listens on loopback unless told otherwise (--host), and stops on
// Ctrl-C or SIGTERM, closing its BPF objects. Outside this repository,
// import from 'libbpf-node' and 'libbpf-node/metrics'.
import { closeSync } from 'node:fs';
import { createServer } from 'node:http';
import { once } from 'node:events';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { BpfObject, enableStats, openRawSocket, type StatsHandle } from '../ts/index.js';
import { mapCounter, mapLog2Histogram, programStats, registerPrometheus } from '../ts/metrics/index.js';
import { RunqlatSkeleton } from './runqlat.skel.js';
import { intArg, parseTool, runTool, sleepUnlessAborted } from './tool.js';

const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp' };

const NAME = 'metrics-server';
const { values } = parseTool({
  name: NAME,
  summary: 'Serve run queue latency (runqlat) and packets per protocol (sock_example) as Prometheus metrics on /metrics.',
  options: {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    ifname: { type: 'string', short: 'i' },
    'no-stats': { type: 'boolean' },
  },
  describe: {
    port: 'TCP port to listen on (default 9435; 0: any free port)',
    host: 'address to listen on (default 127.0.0.1: loopback only)',
    ifname: 'interface whose packets sock_example counts (default lo)',
    'no-stats': 'leave the kernel\'s run-time statistics off (bpf_program_* stay 0)',
  },
  examples: [
    ['metrics-server', 'serve http://127.0.0.1:9435/metrics'],
    ['metrics-server --port 0', 'any free port; the address is printed'],
    ['metrics-server --host 0.0.0.0 -i eth0', 'serve every interface, count eth0\'s packets'],
  ],
});

async function main(signal: AbortSignal): Promise<void> {
  const port = intArg('--port', values.port, 9435, 0, 65535);
  const host = values.host ?? '127.0.0.1';
  const ifname = values.ifname ?? 'lo';

  const runqlat = new RunqlatSkeleton().load();
  const sockstat = new BpfObject(path.join(__dirname, '..', '..', 'bpf', 'sock_example.bpf.o'));
  let sock = -1;
  let stats: StatsHandle | undefined;
  try {
    if (!values['no-stats']) stats = enableStats();
    sockstat.load();
    runqlat.attach();
    sock = openRawSocket(ifname);
    sockstat.program('count_packets').attachSocket(sock);

    const registry = new Registry();
    using _ = registerPrometheus(registry, [
      // runqlat files microseconds in log2 slots; Prometheus' unit is the second.
      mapLog2Histogram(runqlat.maps.hists, {
        name: 'runqlat_latency_seconds', help: 'Time tasks waited on a run queue (runqlat; _sum estimated from the log2 slots)',
        unit: 's', divisor: 1e6,
      }),
      mapCounter(sockstat.map<number, bigint>('counts'), {
        name: 'sockstat_packets_total', help: `Packets seen on ${ifname} per IP protocol (sock_example)`,
        labels: (proto) => (PROTOCOLS[proto] ? { protocol: PROTOCOLS[proto]!, interface: ifname } : null),
      }),
      ...programStats([...runqlat.object.programs.values(), ...sockstat.programs.values()]),
    ]);

    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: metrics are on /metrics\n');
        return;
      }
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(e)}\n`));
    });
    server.listen(port, host);
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([e]) => { throw e; })]);
    const addr = server.address();
    const where = typeof addr === 'object' && addr ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : String(addr);
    // The ids let bpftool (`bpftool map dump id N`) read the same maps.
    console.log(`Maps: runqlat hists id ${runqlat.maps.hists.id}, sock_example counts id ${sockstat.map('counts').id}`);
    console.log(`Serving http://${where}/metrics (Ctrl-C to stop)`);
    while (!signal.aborted) await sleepUnlessAborted(2 ** 31 - 1, signal);
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    console.log('Stopped.');
  } finally {
    if (sock >= 0) closeSync(sock);
    sockstat.close();
    runqlat.close();
    stats?.close();
  }
}

runTool(NAME, main);
