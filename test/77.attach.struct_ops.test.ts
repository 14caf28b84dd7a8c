// struct_ops on the real kernel: struct_ops_test is a Reno-like
// tcp_congestion_ops of our own, "lbn_reno". Registered (obj.attach() or
// map.attachStructOps()), it is in net.ipv4.tcp_available_congestion_control
// and a TCP connection can run it (in a network namespace of its own, whose
// default algorithm we may change without touching the host's); detached,
// closed or at the process's exit it is gone again.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { BpfError, BpfObject, features, type BpfLink } from '../ts/index.js';
import { ROOT, itIf, obj, pinPath, throwsWith } from './helpers.js';

const NAME = 'lbn_reno';
const available = (): string[] => readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);
const LIB = path.join(ROOT, 'dist', 'ts', 'index.js');
const OBJECT = obj('struct_ops_test');

// A bulk TCP transfer on 127.0.0.1 in a new network namespace whose default
// congestion control is lbn_reno; prints `ss -tin` taken during the transfer.
const TRANSFER = `
const net = require('node:net');
const { execFileSync } = require('node:child_process');
const server = net.createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end()); });
server.listen(0, '127.0.0.1', () => {
  const c = net.connect(server.address().port, '127.0.0.1', () => {
    const chunk = Buffer.alloc(1 << 16, 1);
    for (let i = 0; i < 64; i++) c.write(chunk);
    process.stdout.write(execFileSync('ss', ['-tin', 'state', 'established'], { encoding: 'utf8' }));
    c.end();
  });
  c.on('close', () => server.close());
  c.resume();
});
`;

// Outside the initial namespace only the algorithms of
// net.ipv4.tcp_allowed_congestion_control may be a default, so the
// namespace's loopback route names it instead (congctl): the host's
// settings are never touched.
const ROUTE = 'ip route replace local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 congctl';
function inNetns(script: string): string {
  return execFileSync('unshare', ['--net', 'sh', '-c',
    `ip link set lo up && ${ROUTE} ${NAME} && exec "$0" -e "$1"`, process.execPath, script],
  { encoding: 'utf8', timeout: 60_000 });
}

describe('struct_ops (a tcp_congestion_ops of our own)', function () {
  const it = itIf('structOps', features.structOps());
  let o: BpfObject | undefined;
  afterEach(() => {
    o?.close();
    o = undefined;
    assert.ok(!available().includes(NAME), `${NAME} is still registered after the test`);
  });

  it('obj.attach() registers the map (its programs are reported as members); close() unregisters', function () {
    o = new BpfObject(OBJECT).load();
    assert.ok(!available().includes(NAME));
    const { links, skipped } = o.attach();
    assert.equal(links.length, 1);
    assert.equal(links[0]!.type, 'struct_ops');
    assert.deepEqual(skipped.map((s) => s.program.name).sort(), ['lbn_cong_avoid', 'lbn_init', 'lbn_ssthresh', 'lbn_undo_cwnd']);
    assert.match(skipped[0]!.reason, /struct_ops map/);
    assert.ok(available().includes(NAME), `${NAME} is registered`);
    o.close();
    assert.equal(links[0]!.attached, false);
    assert.ok(!available().includes(NAME), 'gone once the object is closed');
  });

  it('a TCP connection selects it and runs its programs (init, cong_avoid)', function () {
    o = new BpfObject(OBJECT).load();
    using link = o.map(NAME).attachStructOps();
    assert.equal(link.attached, true);
    const bss = o.globals('.bss');
    const ss = inNetns(TRANSFER);
    assert.match(ss, new RegExp(`\\b${NAME}\\b`), `ss -tin shows the algorithm:\n${ss}`);
    // The client socket and the server's accepted one both chose it.
    assert.ok((bss.inits as bigint) >= 2n, `init ran ${String(bss.inits)} times`);
    assert.ok((bss.cong_avoids as bigint) > 0n, 'cong_avoid ran on ACKs');
    link.detach();
    assert.ok(!available().includes(NAME));
    // Not registered: a route cannot name it any more.
    const r = spawnSync('unshare', ['--net', 'sh', '-c', `ip link set lo up && ${ROUTE} ${NAME}`], { encoding: 'utf8' });
    assert.notEqual(r.status, 0, 'ip route congctl accepted an unregistered algorithm');
    assert.match(r.stderr, /Unknown tcp congestion algorithm/);
  });

  it('map.attachStructOps(): a link that detaches once; a second registration is the kernel\'s error', function () {
    o = new BpfObject(OBJECT).load();
    const map = o.map(NAME);
    const link = map.attachStructOps();
    assert.equal(link.type, 'struct_ops');
    const err = throwsWith(() => map.attachStructOps(), { op: 'bpf_map__attach_struct_ops' }, BpfError);
    assert.match(err.message, /map lbn_reno/);
    assert.ok(available().includes(NAME));
    link.detach();
    link.detach();
    assert.ok(!available().includes(NAME));
    // The kernel registers a struct_ops map (without BPF_F_LINK) once: after
    // detach it is on its way out, and a fresh object registers again.
    throwsWith(() => map.attachStructOps(), { code: 'EBUSY', op: 'bpf_map__attach_struct_ops' }, BpfError);
    assert.ok(!available().includes(NAME));
    using fresh = new BpfObject(OBJECT).load();
    const again = fresh.map(NAME).attachStructOps();
    assert.ok(available().includes(NAME));
    again.close();
    assert.ok(!available().includes(NAME));
  });

  it('a registration without a kernel link (no BPF_F_LINK) cannot be pinned: BpfError EOPNOTSUPP', function () {
    o = new BpfObject(OBJECT).load();
    using link: BpfLink = o.map(NAME).attachStructOps();
    if (link.fd >= 0) this.skip(); // a real struct_ops link (libbpf 1.2+ with .struct_ops.link): pinnable
    assert.equal(link.id, undefined);
    throwsWith(() => link.pin(pinPath('struct_ops')), { code: 'EOPNOTSUPP', op: 'bpf_link__pin', message: /BPF_F_LINK/ }, BpfError);
  });

  it('is undone when the process exits (process.exit) or is killed by SIGTERM without close()', async function () {
    this.timeout(60_000);
    const child = `const { BpfObject } = require(${JSON.stringify(LIB)});
const o = new BpfObject(${JSON.stringify(OBJECT)}).load();
o.attach();
const ok = require('node:fs').readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').includes('${NAME}');
process.stdout.write(ok ? 'registered\\n' : 'not registered\\n');
if (process.argv[1] === 'exit') process.exit(0);
setInterval(() => {}, 1000);`;
    const r = spawnSync(process.execPath, ['-e', child, 'exit'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.stdout, 'registered\n', r.stderr);
    assert.equal(r.status, 0);
    assert.ok(!available().includes(NAME), 'unregistered at process.exit()');

    const p = spawn(process.execPath, ['-e', child, 'wait'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => p.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(line, 'registered\n');
    assert.ok(available().includes(NAME));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => p.once('exit', (_code, signal) => resolve(signal)));
    p.kill('SIGTERM');
    assert.equal(await exited, 'SIGTERM');
    assert.ok(!available().includes(NAME), 'unregistered on SIGTERM');
  });

  it('refuses misuse with Node-style errors', function () {
    o = new BpfObject(OBJECT);
    throwsWith(() => o!.map(NAME).attachStructOps(), { code: 'ERR_INVALID_STATE' }, TypeError);
    o.load();
    throwsWith(() => o!.map('struct_o.bss').attachStructOps(), { code: 'ERR_INVALID_ARG_VALUE', message: /needs a struct_ops map/ }, TypeError);
    const map = o.map(NAME);
    o.close();
    throwsWith(() => map.attachStructOps(), { code: 'ERR_INVALID_STATE' }, TypeError);
  });
});
