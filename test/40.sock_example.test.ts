// The kernel's sock_example, both forms: exact counts from the kernel for
// known traffic, in a private network namespace so that nothing else on the
// machine talks on lo.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import * as path from 'node:path';
import { BpfObject } from '../ts/index.js';
import { ROOT, obj } from './helpers.js';

// Runs `node script args` in a new network namespace with lo up.
function inNetns(script: string, args: string[]): string {
  return execFileSync('unshare', ['--net', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh',
    process.execPath, script, ...args], { encoding: 'utf8', timeout: 30_000 });
}

interface Counts { tcp: number; udp: number; icmp: number; tag: string }

describe('sock_example', function () {
  this.timeout(30_000);
  const fixture = path.join(ROOT, 'dist', 'test', 'fixtures', 'sock-count.js');
  const UDP = 7;
  const PINGS = 3;

  // Every packet on lo passes the raw socket twice: outgoing, then incoming.
  const expected = { tcp: 0, udp: 2 * UDP, icmp: 2 * 2 * PINGS };

  let compiled: Counts;
  let handWritten: Counts;

  it(`restricted C (SEC("socket")): ${UDP} UDP datagrams and ${PINGS} pings counted exactly`, function () {
    compiled = JSON.parse(inNetns(fixture, [String(UDP), String(PINGS)])) as Counts;
    assert.deepEqual({ ...compiled, tag: undefined }, { ...expected, tag: undefined });
  });

  it('hand-written instructions (asm + BpfMap.create): the same exact counts', function () {
    handWritten = JSON.parse(inNetns(fixture, ['--insns', String(UDP), String(PINGS)])) as Counts;
    assert.deepEqual({ ...handWritten, tag: undefined }, { ...expected, tag: undefined });
  });

  it('both forms are the same program: the kernel gives them the same tag', function () {
    assert.match(compiled.tag, /^[0-9a-f]{16}$/);
    assert.equal(handWritten.tag, compiled.tag);
  });

  it('examples/sockstat prints the same counts both ways', function () {
    const example = path.join(ROOT, 'dist', 'examples', 'sockstat.js');
    const c = inNetns(example, ['--seconds', '2']).trim().split('\n');
    const h = inNetns(example, ['--seconds', '2', '--insns']).trim().split('\n');
    assert.deepEqual(c, ['TCP 0 UDP 10 ICMP 4 packets', 'TCP 0 UDP 20 ICMP 8 packets']);
    assert.deepEqual(h, c);
  });
});

describe('socket filters on Node sockets', function () {
  let o: BpfObject;
  beforeEach(() => {
    o = new BpfObject(obj('test_progs')).load();
  });
  afterEach(() => o.close());

  const packets = (): number => Number(o.map<number, bigint>('sock_packets').lookup(0)!);

  async function exchange(rx: Socket, n: number): Promise<number> {
    const tx = createSocket('udp4');
    let got = 0;
    const done = new Promise<void>((r) => {
      rx.on('message', () => ++got === n && r());
    });
    for (let i = 0; i < n; i++) tx.send(`m${i}`, rx.address().port, '127.0.0.1');
    await Promise.race([done, new Promise((r) => setTimeout(r, 500))]);
    rx.removeAllListeners('message');
    tx.close();
    return got;
  }

  it('attaches to a dgram socket, counts its datagrams, and stops at detach()', async function () {
    const rx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    try {
      const link = o.program('sock_count').attachSocket(rx);
      assert.equal(link.type, 'socket_filter');
      assert.equal(await exchange(rx, 5), 5);
      assert.equal(packets(), 5);
      link.detach();
      link.detach();
      assert.equal(await exchange(rx, 3), 3);
      assert.equal(packets(), 5);
    } finally {
      rx.close();
    }
  });

  it('a filter that returns 0 drops every datagram of the socket', async function () {
    const rx = createSocket('udp4');
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
    const sock = new BpfObject(obj('sock_example')).load();
    try {
      sock.program('count_packets').attachSocket(rx);
      assert.equal(await exchange(rx, 4), 0);
      sock.close(); // detaches: datagrams flow again
      assert.equal(await exchange(rx, 2), 2);
    } finally {
      sock.close();
      rx.close();
    }
  });

  it('attaches to a net.Socket (TCP) and sees its segments', async function () {
    const server = createServer((s) => s.end('hello'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    await once(client, 'connect');
    try {
      o.program('sock_count').attachSocket(client);
      let data = '';
      client.on('data', (d: Buffer) => (data += d.toString()));
      await once(client, 'end');
      assert.equal(data, 'hello');
      assert.ok(packets() >= 1, `segments counted: ${packets()}`);
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('an unbound dgram socket has no fd yet: a clear TypeError', function () {
    const s = createSocket('udp4');
    try {
      assert.throws(() => o.program('sock_count').attachSocket(s), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    } finally {
      s.close();
    }
  });
});

// Keeps the ping used above honest: the test machine must have it.
before(function () {
  execFileSync('ping', ['-V'], { stdio: 'ignore' });
});
