// Netfilter programs (Linux 6.4) on the real kernel: netfilter_test counts
// the IPv4 UDP datagrams to one port at local_in, so the datagrams this test
// sends on lo (and no other traffic) are what it counts. The link is a
// kernel link: bpftool lists it, detach() removes it, and counting stops.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { BpfError, BpfObject, features, type Globals } from '../ts/index.js';
import { bpftool, itIf, obj, throwsWith } from './helpers.js';

interface LinkJson {
  id: number;
  type: string | number;
  prog_id: number;
}

// Sends datagrams of these payload sizes to a socket on 127.0.0.1 and waits
// until all arrived: local_in ran for each before its delivery.
async function sendUdp(sizes: readonly number[], setPort: (port: number) => void): Promise<void> {
  const server = dgram.createSocket('udp4');
  server.bind(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  setPort(port);
  const client = dgram.createSocket('udp4');
  let got = 0;
  const all = new Promise<void>((resolve) => server.on('message', () => {
    if (++got === sizes.length) resolve();
  }));
  for (const n of sizes) client.send(Buffer.alloc(n, 0x61), port, '127.0.0.1');
  await all;
  client.close();
  server.close();
}

describe('BpfProgram#attachNetfilter', function () {
  const it = itIf('netfilter', features.netfilter());
  let o: BpfObject;
  let seen: Globals;
  beforeEach(() => {
    o = new BpfObject(obj('netfilter_test'));
    o.load();
    seen = o.globals('.bss');
  });
  afterEach(() => o.close());

  it('loads SEC("netfilter") as a netfilter program with any libbpf (1.1 does not know the section)', function () {
    const p = o.program('count_udp');
    assert.equal(p.type, 'netfilter');
    assert.equal(p.expectedAttachType, 'netfilter');
  });

  it('counts the datagrams at local_in while attached, and not after detach()', async function () {
    const prog = o.program('count_udp');
    const link = prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: -128 });
    assert.equal(link.type, 'netfilter');
    assert.equal(typeof link.id, 'number');
    const listed = bpftool<LinkJson>('link', 'show', 'id', String(link.id));
    // bpftool of libbpf 1.1 prints the link type as its number (10).
    assert.ok(listed.type === 'netfilter' || listed.type === 10, `bpftool says type ${listed.type}`);
    assert.equal(listed.prog_id, link.programId);
    await sendUdp([10, 20, 30, 40, 50], (port) => { seen.port = port; });
    assert.equal(seen.packets, 5n);
    assert.equal(seen.bytes, 150n);
    const id = String(link.id);
    link.detach();
    assert.throws(() => execFileSync('bpftool', ['link', 'show', 'id', id], { stdio: 'pipe' }), 'the link is gone from the kernel');
    await sendUdp([7, 7], (port) => { seen.port = port; });
    assert.equal(seen.packets, 5n, 'nothing counted once detached');
    link.detach(); // idempotent
  });

  it('closing the object detaches its netfilter links', async function () {
    const link = o.program('count_udp').attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 100 });
    const id = String(link.id);
    o.close();
    assert.equal(link.attached, false);
    assert.throws(() => execFileSync('bpftool', ['link', 'show', 'id', id], { stdio: 'pipe' }));
  });

  it('hooks any family and hook; the kernel refuses what it does not allow (BpfError, op bpf_link_create)', function () {
    const prog = o.program('count_udp');
    for (const hooknum of ['prerouting', 'local_in', 'forward', 'local_out', 'postrouting'] as const) {
      using link = prog.attachNetfilter({ pf: 'ipv6', hooknum, priority: 1 });
      assert.equal(link.type, 'netfilter');
    }
    // Defragmentation happens at -400: a program asking for it must come after.
    const err = throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: -500, ipDefrag: true }),
      { code: 'ERANGE', op: 'bpf_link_create' }, BpfError);
    assert.match(err.message, /netfilter ipv4 local_in priority -500 \(program count_udp\)/);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 1, flags: 0x80 }),
      { code: 'EOPNOTSUPP', op: 'bpf_link_create' }, BpfError);
  });
});

// Checked before any syscall: any loaded program will do, on any kernel.
describe('BpfProgram#attachNetfilter: bad options', function () {
  it('refuses bad options with Node-style errors before any syscall', function () {
    const o = new BpfObject(obj('sock_example')).load();
    const prog = o.program('count_packets'); // a socket filter: reaching the kernel would be its EINVAL
    throwsWith(() => prog.attachNetfilter(undefined as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'inet', hooknum: 'local_in', priority: 0 } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /'ipv4', 'ipv6'/ }, TypeError);
    throwsWith(() => prog.attachNetfilter({ pf: 2, hooknum: 'local_in', priority: 0 } as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'input', priority: 0 } as never), { code: 'ERR_INVALID_ARG_VALUE', message: /'prerouting'/ }, TypeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in' } as never), { code: 'ERR_INVALID_ARG_TYPE', message: /priority/ }, TypeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 1.5 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: -0x8000_0000 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 0x7fff_ffff }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 0, flags: -1 }), { code: 'ERR_OUT_OF_RANGE' }, RangeError);
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 0, ipDefrag: 1 } as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    o.close();
    throwsWith(() => prog.attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 0 }), { code: 'ERR_INVALID_STATE' }, TypeError);
  });
});

describe('BpfProgram#attachNetfilter on a program of another type', function () {
  const it = itIf('netfilter', features.netfilter());
  it('is the kernel\'s EINVAL from bpf_link_create, naming the hook', function () {
    using o = new BpfObject(obj('syscall_test')).load();
    const err = throwsWith(() => o.program('bump').attachNetfilter({ pf: 'ipv4', hooknum: 'local_out', priority: 0 }),
      { code: 'EINVAL', op: 'bpf_link_create' }, BpfError);
    assert.match(err.message, /netfilter ipv4 local_out priority 0/);
  });
});

describe('BpfProgram#attachNetfilter on a kernel without netfilter programs', function () {
  // The other side of the probe: where netfilter programs are missing
  // (before 6.4), the failure says so.
  const it = features.netfilter() === true ? itIf('noNetfilter', 'this kernel has netfilter programs') : itIf('syscallPrograms', features.syscallPrograms());
  it('is a BpfError from bpf_link_create whose `unsupported` is netfilter', function () {
    using o = new BpfObject(obj('syscall_test')).load();
    const err = throwsWith(() => o.program('bump').attachNetfilter({ pf: 'ipv4', hooknum: 'local_in', priority: 0 }),
      { op: 'bpf_link_create', unsupported: 'netfilter' }, BpfError);
    assert.match(err.message, /netfilter programs need Linux 6\.4/);
  });

  it('a SEC("netfilter") object fails to load naming the feature', function () {
    const o = new BpfObject(obj('netfilter_test'));
    try {
      throwsWith(() => o.load(), { unsupported: 'netfilter' }, BpfError);
    } finally {
      o.close();
    }
  });
});
