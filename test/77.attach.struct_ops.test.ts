// struct_ops on the real kernel: struct_ops_test is a Reno-like
// tcp_congestion_ops of our own, "lbn_reno". Registered (obj.attach() or
// map.attachStructOps()), it is in net.ipv4.tcp_available_congestion_control
// and a TCP connection can run it (in a network namespace of its own, whose
// default algorithm we may change without touching the host's); detached,
// closed or at the process's exit it is gone again.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { BpfError, BpfLink, BpfObject, features } from '../ts/index.js';
import { ROOT, bpftool, itIf, obj, pinPath, throwsWith } from './helpers.js';

const NAME = 'lbn_reno';
const available = (): string[] => readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').trim().split(/\s+/);
const LIB = path.join(ROOT, 'dist', 'ts', 'index.js');
const OBJECT = obj('struct_ops_test');

// A bulk TCP transfer on 127.0.0.1 in a new network namespace whose
// loopback route names lbn_reno; prints the two ends' local ports as JSON.
const TRANSFER = `
const net = require('node:net');
const server = net.createServer((c) => { c.on('data', () => {}); c.on('end', () => c.end()); });
server.listen(0, '127.0.0.1', () => {
  const port = server.address().port;
  const c = net.connect(port, '127.0.0.1', () => {
    const chunk = Buffer.alloc(1 << 16, 1);
    for (let i = 0; i < 64; i++) c.write(chunk);
    process.stdout.write(JSON.stringify({ server: port, client: c.localPort }));
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
  { encoding: 'utf8', timeout: 90_000 });
}

describe('struct_ops (a tcp_congestion_ops of our own)', function () {
  // Loading a struct_ops object reads the kernel's BTF; the transfer runs a
  // node process in a namespace.
  this.timeout(Math.max(this.timeout(), 120_000));
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
    const ports = JSON.parse(inNetns(TRANSFER)) as { server: number; client: number };
    // lbn_init ran for both ends of this connection: the client's socket
    // and the one the server accepted (local port = the server's).
    const inits = o.map<number, bigint>('init_ports');
    assert.equal(inits.lookup(ports.client), 1n, `init for the client's port ${ports.client}`);
    assert.equal(inits.lookup(ports.server), 1n, `init for the server's port ${ports.server}`);
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
    if (link.fd >= 0) {
      // a real struct_ops link (libbpf 1.2+ with .struct_ops.link): pinnable
      this.test!.title += ' — skipped: this libbpf made a real struct_ops link, which can be pinned';
      this.skip();
    }
    assert.equal(link.id, undefined);
    throwsWith(() => link.pin(pinPath('struct_ops')), { code: 'EOPNOTSUPP', op: 'bpf_link__pin', message: /BPF_F_LINK/ }, BpfError);
  });

  it('is undone when the process exits (process.exit) or is killed by SIGTERM without close()', async function () {
    const child = `const { BpfObject } = require(${JSON.stringify(LIB)});
const o = new BpfObject(${JSON.stringify(OBJECT)}).load();
o.attach();
const ok = require('node:fs').readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8').includes('${NAME}');
process.stdout.write(ok ? 'registered\\n' : 'not registered\\n');
if (process.argv[1] === 'exit') process.exit(0);
setInterval(() => {}, 1000);`;
    const r = spawnSync(process.execPath, ['-e', child, 'exit'], { encoding: 'utf8', timeout: 90_000 });
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

describe('struct_ops with BPF_F_LINK: a kernel link', function () {
  this.timeout(Math.max(this.timeout(), 120_000));
  const it = itIf('structOpsLink', features.structOpsLink());
  const BPF_F_LINK = 1 << 13;
  let o: BpfObject | undefined;
  const linked = (): BpfObject => {
    o = new BpfObject(OBJECT);
    const m = o.map(NAME);
    m.flags |= BPF_F_LINK; // SEC(".struct_ops.link") with libbpf 1.2+
    return o.load();
  };
  afterEach(() => {
    o?.close();
    o = undefined;
    assert.ok(!available().includes(NAME), `${NAME} is still registered after the test`);
  });

  it('registers through a link bpftool sees; detach unregisters; the map links again; a second link is EEXIST', function () {
    const map = linked().map(NAME);
    const link = map.attachStructOps();
    assert.equal(link.type, 'struct_ops');
    assert.ok(link.fd >= 0);
    assert.equal(typeof link.id, 'number');
    const listed = bpftool<{ id: number; type: string | number }>('link', 'show', 'id', String(link.id));
    assert.ok(listed.type === 'struct_ops' || listed.type === 9, `bpftool says type ${listed.type}`);
    assert.ok(available().includes(NAME));
    // The link is made here with libbpf 1.1, by bpf_map__attach_struct_ops with 1.2+.
    throwsWith(() => map.attachStructOps(), { code: 'EEXIST', op: /^(bpf_link_create|bpf_map__attach_struct_ops)$/ }, BpfError);
    link.detach();
    assert.ok(!available().includes(NAME));
    const again = map.attachStructOps();
    assert.notEqual(again.id, link.id);
    assert.ok(available().includes(NAME));
    o!.close();
    assert.equal(again.attached, false);
  });

  it('a pinned link keeps it registered until the pin goes', function () {
    const path = pinPath('struct_ops_link');
    {
      using link = linked().map(NAME).attachStructOps();
      link.pin(path);
    }
    o!.close();
    assert.ok(available().includes(NAME), 'the pin holds the registration');
    const pinned = BpfLink.fromPin(path);
    unlinkSync(path);
    pinned.detach();
    assert.ok(!available().includes(NAME));
  });

  it('SIGKILL leaves nothing registered: the kernel closes the link with the process', async function () {
    const child = `const { BpfObject } = require(${JSON.stringify(LIB)});
const o = new BpfObject(${JSON.stringify(OBJECT)});
o.map('${NAME}').flags |= ${BPF_F_LINK};
o.load();
o.attach();
process.stdout.write('registered\\n');
setInterval(() => {}, 1000);`;
    const p = spawn(process.execPath, ['-e', child], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve) => p.stdout.once('data', (d: Buffer) => resolve(d.toString())));
    assert.equal(line, 'registered\n');
    assert.ok(available().includes(NAME));
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill('SIGKILL');
    await exited;
    // The link's release runs after the fd's last reference: allow it a moment.
    for (let i = 0; i < 50 && available().includes(NAME); i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(!available().includes(NAME), 'unregistered after SIGKILL');
  });
});
