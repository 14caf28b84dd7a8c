// Attaching networking programs for real: XDP and tc on a veth pair between
// two network namespaces of this test (agents in each, test/fixtures/
// net-agent.ts, attach and count), cgroup_skb on a cgroup of its own,
// sk_lookup on a namespace, sk_msg on a sockmap, link.update(), and the
// attachments the kernel or the library must refuse. Every effect is
// observed where the datagrams arrive, and in net_test's counters `pkts`
// ([slot*2] passed, [slot*2+1] dropped); the programs drop UDP to 7777.
// Traffic stays on loopback or on the veth pair between our namespaces.
import { strict as assert } from 'node:assert';
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket as NetSocket } from 'node:net';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { BpfError, BpfObject, features } from '../ts/index.js';
import { ROOT, obj, openFds, throwsWith, withoutFdLeak } from './helpers.js';
import type {
  AgentHello, AgentReply, AgentRequest, AgentResults, ErrorInfo, LoopbackReport,
} from './fixtures/net-protocol.js';

const DROP = 7777;
const PASS = 7778;
const N = 5;
const SLOT = { XDP: 0, TC: 1, CGROUP: 2, SK_LOOKUP: 3 } as const;
const FIXTURES = path.join(ROOT, 'dist', 'test', 'fixtures');
// tcx came with Linux 6.6; before it attachTc() makes a classic tc filter.
const TCX = features.tcx() === true ? 'tcx' : 'tc';

const NS_A = `lbn-${process.pid}-a`;
const NS_B = `lbn-${process.pid}-b`;
const A_IP = '10.77.0.1';
const B_IP = '10.77.0.2';

// --- what the kernel says, through its own tools -------------------------

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });

interface IpLink {
  ifindex: number;
  xdp?: { mode: number; prog?: { id: number; name: string } };
}
const ipLink = (ns: string, dev: string): IpLink =>
  (JSON.parse(run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', dev])) as IpLink[])[0]!;

interface NetShow {
  xdp: { devname: string; ifindex: number; mode: string; id: number }[];
  tc: { devname: string; kind: string; name: string; id: number }[];
}
/** bpftool net show: [devname, ifindex, mode, program id] of XDP, [devname, kind, program id] of tc filters. */
function netShow(ns: string, dev: string): { xdp: [string, number, string, number][]; tc: [string, string, number][] } {
  const n = (JSON.parse(run('ip', ['netns', 'exec', ns, 'bpftool', '-j', 'net', 'show', 'dev', dev])) as NetShow[])[0]!;
  return {
    xdp: n.xdp.map((x) => [x.devname, x.ifindex, x.mode, x.id]),
    tc: n.tc.map((t) => [t.devname, t.kind, t.id]),
  };
}

const tcFilters = (ns: string, dev: string, dir: 'ingress' | 'egress'): string =>
  run('tc', ['-n', ns, 'filter', 'show', 'dev', dev, dir]);

interface KernelLink { id: number; type: string | number; prog_id: number }
/** A kernel link by id, or undefined when there is none. */
function kernelLink(id: number): KernelLink | undefined {
  const r = spawnSync('bpftool', ['-j', 'link', 'show', 'id', String(id)], { encoding: 'utf8' });
  return r.status === 0 ? (JSON.parse(r.stdout) as KernelLink) : undefined;
}
/** Kernel links that run any of these programs. */
const linksRunning = (progIds: number[]): KernelLink[] =>
  (JSON.parse(run('bpftool', ['-j', 'link', 'show'])) as KernelLink[]).filter((l) => progIds.includes(l.prog_id));

interface CgroupProg { id: number; attach_type: string; name: string }
const effectiveProgs = (dir: string): CgroupProg[] => {
  const out = run('bpftool', ['-j', 'cgroup', 'show', dir, 'effective']).trim();
  return out === '' ? [] : (JSON.parse(out) as CgroupProg[]);
};
/**
 * The programs attached to the cgroup `dir` itself: those in effect there
 * that are not in effect in its parent. (Plain `bpftool cgroup show` asks
 * the kernel for each program's attach flags, which kernels before 6.0
 * refuse with EINVAL; `effective` does not ask.)
 */
function cgroupProgs(dir: string): CgroupProg[] {
  const inherited = new Set(effectiveProgs(path.dirname(dir)).map((p) => `${p.id}/${p.attach_type}`));
  return effectiveProgs(dir).filter((p) => !inherited.has(`${p.id}/${p.attach_type}`));
}

// --- counters -----------------------------------------------------------

const readPkts = (o: BpfObject): number[] =>
  Array.from({ length: 8 }, (_, i) => Number(o.map<number, bigint>('pkts').lookup(i)!));
const delta = (before: number[], after: number[]): number[] => after.map((v, i) => v - before[i]!);

/** The program of `slot` dropped exactly `n` datagrams and passed at least `n` packets (ARP and the like pass too). */
function assertCounted(d: number[], slot: number, n: number): void {
  assert.equal(d[slot * 2 + 1], n, `dropped, slot ${slot}: ${JSON.stringify(d)}`);
  assert.ok(d[slot * 2]! >= n, `passed, slot ${slot}: ${JSON.stringify(d)}`);
}

/** What an error must have: a value, or a pattern its text matches. */
type Want = { [K in keyof ErrorInfo]?: ErrorInfo[K] | RegExp };

function assertFailure(e: ErrorInfo, want: Want): void {
  for (const [k, v] of Object.entries(want) as [string, unknown][]) {
    const got = (e as unknown as Record<string, unknown>)[k];
    if (v instanceof RegExp) assert.match(String(got), v, `error.${k} (${e.name}: ${e.message})`);
    else assert.equal(got, v, `error.${k} (${e.name}: ${e.message})`);
  }
}

// --- an agent in a namespace --------------------------------------------

class Agent {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #pending = new Map<number, { resolve: (r: AgentReply) => void; reject: (e: Error) => void }>();
  #next = 1;
  #stderr = '';
  #exited = false;
  readonly hello: Promise<AgentHello>;

  constructor(readonly ns: string) {
    this.#child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(FIXTURES, 'net-agent.js')]);
    this.#child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    let ready: (h: AgentHello) => void;
    let failed: (e: Error) => void;
    this.hello = new Promise((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    this.hello.catch(() => undefined); // awaited in before(); an early exit must not be an unhandled rejection
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as AgentHello | AgentReply;
      if ('ready' in msg) ready(msg);
      else {
        this.#pending.get(msg.id)?.resolve(msg);
        this.#pending.delete(msg.id);
      }
    });
    this.#child.once('exit', (code, signal) => {
      this.#exited = true;
      const e = new Error(`agent in ${ns} exited (${code ?? signal}): ${this.#stderr}`);
      failed(e);
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    });
  }

  call(req: AgentRequest, timeoutMs = 10_000): Promise<AgentReply> {
    if (this.#exited) return Promise.reject(new Error(`agent in ${this.ns} is gone: ${this.#stderr}`));
    const id = this.#next++;
    return new Promise<AgentReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`agent in ${this.ns}: no answer to ${JSON.stringify(req)}`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      this.#child.stdin.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** The request's result; throws what the agent caught. */
  async ok<R extends AgentRequest>(req: R): Promise<AgentResults[R['op']]> {
    const r = await this.call(req);
    if (!r.ok) throw new Error(`${req.op} in ${this.ns} failed: ${r.error!.name} ${r.error!.code ?? ''}: ${r.error!.message}`);
    return r.value as AgentResults[R['op']];
  }

  /** The error of a request that must fail, and the agent's open fds around it. */
  async fails(req: AgentRequest): Promise<{ error: ErrorInfo; fds: [number, number] }> {
    const r = await this.call(req);
    if (r.ok) throw new assert.AssertionError({ message: `${JSON.stringify(req)} succeeded: ${JSON.stringify(r.value)}` });
    return { error: r.error!, fds: r.fds };
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = once(this.#child, 'exit');
    await this.call({ op: 'exit' }, 3000).catch(() => undefined);
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

// --- XDP, tc, sk_lookup and update on a veth pair ----------------------------

describe('attach: networking programs on a veth pair between two namespaces', function () {
  this.timeout(20_000);
  let a: Agent | undefined;
  let b: Agent | undefined;
  let A: Agent;
  let B: Agent;
  let progs: AgentHello['progs'];
  let ifindexB: number;

  before(async function () {
    const ip = (...args: string[]): string => run('ip', args);
    ip('netns', 'add', NS_A);
    ip('netns', 'add', NS_B);
    ip('-n', NS_A, 'link', 'add', 'veth-a', 'type', 'veth', 'peer', 'name', 'veth-b', 'netns', NS_B);
    ip('-n', NS_A, 'addr', 'add', `${A_IP}/24`, 'dev', 'veth-a');
    ip('-n', NS_B, 'addr', 'add', `${B_IP}/24`, 'dev', 'veth-b');
    for (const [ns, dev] of [[NS_A, 'veth-a'], [NS_B, 'veth-b']] as const) {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', dev, 'up');
    }
    // Resolves the neighbour too, so that no datagram waits on ARP.
    run('ip', ['netns', 'exec', NS_A, 'ping', '-c', '1', '-W', '2', B_IP]);
    a = new Agent(NS_A);
    b = new Agent(NS_B);
    A = a;
    B = b;
    progs = (await B.hello).progs;
    await A.hello;
    await B.ok({ op: 'listen', addr: B_IP, ports: [DROP, PASS] });
    ifindexB = ipLink(NS_B, 'veth-b').ifindex;
  });

  after(async function () {
    await a?.stop();
    await b?.stop();
    for (const ns of [NS_A, NS_B]) spawnSync('ip', ['netns', 'del', ns]);
  });

  // A failed test must not leave its programs to the next one.
  afterEach(async function () {
    await a?.ok({ op: 'detachAll' });
    await b?.ok({ op: 'detachAll' });
  });

  /** N datagrams from ns A to B's ports 7777 and then 7778: what B received. */
  async function exchange(): Promise<{ drop: number; pass: number }> {
    for (const port of [DROP, PASS]) {
      const { errors } = await A.ok({ op: 'send', addr: B_IP, port, n: N });
      assert.deepEqual(errors, [], `send errors (port ${port})`);
    }
    const got = await B.ok({ op: 'take', port: PASS, n: N, timeoutMs: 2000 });
    return { drop: got[DROP] ?? -1, pass: got[PASS] ?? -1 };
  }

  const nothingAttached = (): void => {
    assert.equal(ipLink(NS_B, 'veth-b').xdp, undefined, 'no XDP program on veth-b');
    assert.deepEqual(netShow(NS_B, 'veth-b'), { xdp: [], tc: [] });
    for (const dir of ['ingress', 'egress'] as const) assert.doesNotMatch(tcFilters(NS_B, 'veth-b', dir), /bpf/);
    assert.deepEqual(linksRunning(Object.values(progs)), [], 'no kernel link runs an agent program');
  };

  describe('XDP', function () {
    it('attachXdp(name): a kernel link; veth-b drops UDP to 7777, passes 7778; ip and bpftool show xdp_filter; detach() restores', async function () {
      const fds = await B.ok({ op: 'fds' });
      const c0 = await B.ok({ op: 'counters' });
      const link = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b' });
      assert.equal(link.type, 'xdp');
      assert.equal(link.programId, progs.xdp_filter);
      assert.equal(typeof link.id, 'number');

      const shown = ipLink(NS_B, 'veth-b').xdp;
      assert.equal(shown?.prog?.name, 'xdp_filter');
      assert.equal(shown?.prog?.id, progs.xdp_filter);
      assert.deepEqual(netShow(NS_B, 'veth-b').xdp, [['veth-b', ifindexB, 'driver', progs.xdp_filter]]);
      const kl = kernelLink(link.id!);
      assert.deepEqual([kl?.type, kl?.prog_id], ['xdp', progs.xdp_filter]);

      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      assertCounted(delta(c0, await B.ok({ op: 'counters' })), SLOT.XDP, N);

      const detached = await B.ok({ op: 'detach', link: link.link });
      assert.equal(detached.attached, false);
      nothingAttached();
      assert.equal(kernelLink(link.id!), undefined, 'the kernel link is gone');
      const c1 = await B.ok({ op: 'counters' });
      assert.deepEqual(await exchange(), { drop: N, pass: N });
      assert.deepEqual(delta(c1, await B.ok({ op: 'counters' })), [0, 0, 0, 0, 0, 0, 0, 0], 'nothing runs after detach()');

      await B.ok({ op: 'detach', link: link.link }); // a second detach() is harmless
      assert.equal(await B.ok({ op: 'fds' }), fds, 'open fds of the agent after detach()');
    });

    it('attachXdp(ifindex) (and attachTc(ifindex)) attach to the interface of that index', async function () {
      const link = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: ifindexB });
      assert.equal(link.type, 'xdp');
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_filter);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      await B.ok({ op: 'detach', link: link.link });

      const tc = await B.ok({ op: 'attachTc', prog: 'tc_filter', iface: ifindexB, opts: { direction: 'ingress' } });
      assert.equal(tc.type, TCX);
      assert.equal(tc.programId, progs.tc_filter);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      await B.ok({ op: 'detach', link: tc.link });
      nothingAttached();
      assert.deepEqual(await exchange(), { drop: N, pass: N });
    });

    it('link.ifindex is the interface for every kind of XDP and tc attachment', async function () {
      const kinds = {
        'xdp (link)': { op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b' },
        'xdp (netlink)': { op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b', opts: { replace: true } },
        tcx: { op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts: { direction: 'ingress' } },
        'tc filter': { op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts: { direction: 'ingress', tcx: false } },
      } as const;
      const got: Record<string, unknown> = {};
      for (const [kind, req] of Object.entries(kinds)) {
        const link = await B.ok(req);
        got[kind] = link.ifindex;
        await B.ok({ op: 'detach', link: link.link });
      }
      assert.deepEqual(got, { 'xdp (link)': ifindexB, 'xdp (netlink)': ifindexB, tcx: ifindexB, 'tc filter': ifindexB });
    });

    it("mode: 'generic' runs the program on veth-b's skb path, as a link and through netlink", async function () {
      for (const replace of [false, true]) {
        const c0 = await B.ok({ op: 'counters' });
        const link = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b', opts: { mode: 'generic', replace } });
        assert.equal(link.type, replace ? 'xdp_netlink' : 'xdp');
        assert.deepEqual(netShow(NS_B, 'veth-b').xdp, [['veth-b', ifindexB, 'generic', progs.xdp_filter]]);
        assert.equal(ipLink(NS_B, 'veth-b').xdp?.mode, 2, 'XDP_ATTACHED_SKB');
        assert.deepEqual(await exchange(), { drop: 0, pass: N });
        assertCounted(delta(c0, await B.ok({ op: 'counters' })), SLOT.XDP, N);
        await B.ok({ op: 'detach', link: link.link });
        nothingAttached();
      }
      assert.deepEqual(await exchange(), { drop: N, pass: N });
    });

    it('replace: true (netlink): the second program wins; detaching the replaced one leaves it, detaching it restores; a link is refused meanwhile (EBUSY)', async function () {
      const fds = await B.ok({ op: 'fds' });
      const first = await B.ok({ op: 'attachXdp', prog: 'xdp_pass', iface: 'veth-b', opts: { replace: true } });
      assert.equal(first.type, 'xdp_netlink');
      assert.equal(first.id, undefined, 'no kernel link object');
      assert.equal(first.programId, progs.xdp_pass);
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_pass);
      assert.deepEqual(await exchange(), { drop: N, pass: N });

      const second = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b', opts: { replace: true } });
      assert.equal(second.programId, progs.xdp_filter);
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.name, 'xdp_filter');
      assert.deepEqual(await exchange(), { drop: 0, pass: N });

      // A link cannot take the place of a program attached through netlink.
      const refused = await B.fails({ op: 'attachXdp', prog: 'xdp_pass', iface: 'veth-b' });
      assertFailure(refused.error, { name: 'BpfError', bpfError: true, code: 'EBUSY', op: 'bpf_link_create', target: /xdp_pass/ });
      assert.equal(refused.fds[0], refused.fds[1], 'fds after the refused attach');
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_filter, 'the netlink program stays');

      // The replaced attachment is no longer there: its detach() leaves the second.
      await B.ok({ op: 'detach', link: first.link });
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_filter);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });

      await B.ok({ op: 'detach', link: second.link });
      nothingAttached();
      assert.deepEqual(await exchange(), { drop: N, pass: N });
      assert.equal(await B.ok({ op: 'fds' }), fds, 'open fds of the agent after detach()');
    });

    it('a netlink attach is refused while a link is there (EBUSY), and the link keeps running', async function () {
      const link = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b' });
      const refused = await B.fails({ op: 'attachXdp', prog: 'xdp_pass', iface: 'veth-b', opts: { replace: true } });
      assertFailure(refused.error, {
        name: 'BpfError', code: 'EBUSY', op: 'bpf_xdp_attach', target: new RegExp(`ifindex ${ifindexB}\\b.*xdp_pass`),
        message: /Can't replace active BPF XDP link/,
      });
      assert.equal(refused.fds[0], refused.fds[1], 'fds after the refused attach');
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_filter);
      assert.equal(kernelLink(link.id!)?.prog_id, progs.xdp_filter);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      await B.ok({ op: 'detach', link: link.link });
      nothingAttached();
    });
  });

  describe('link.update(program)', function () {
    it('switches an XDP link to another program: 7777 passes, programId changes, the link id stays', async function () {
      const link = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b' });
      assert.deepEqual(await exchange(), { drop: 0, pass: N });

      const updated = await B.ok({ op: 'update', link: link.link, prog: 'xdp_pass' });
      assert.equal(updated.programId, progs.xdp_pass);
      assert.equal(updated.id, link.id);
      assert.equal(updated.type, 'xdp');
      assert.equal(kernelLink(link.id!)?.prog_id, progs.xdp_pass);
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_pass);
      const c0 = await B.ok({ op: 'counters' });
      assert.deepEqual(await exchange(), { drop: N, pass: N });
      assert.deepEqual(delta(c0, await B.ok({ op: 'counters' })), [0, 0, 0, 0, 0, 0, 0, 0], 'xdp_filter no longer runs');

      // A program of another type: the kernel refuses, the link is unchanged.
      const refused = await B.fails({ op: 'update', link: link.link, prog: 'tc_filter' });
      assertFailure(refused.error, { name: 'BpfError', code: 'EINVAL', op: 'bpf_link_update' });
      assert.equal(refused.fds[0], refused.fds[1]);
      assert.equal(kernelLink(link.id!)?.prog_id, progs.xdp_pass);

      const back = await B.ok({ op: 'update', link: link.link, prog: 'xdp_filter' });
      assert.equal(back.programId, progs.xdp_filter);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      await B.ok({ op: 'detach', link: link.link });

      // A netlink attachment is no kernel link: nothing to update.
      const nl = await B.ok({ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b', opts: { replace: true } });
      const notLink = await B.fails({ op: 'update', link: nl.link, prog: 'xdp_pass' });
      assertFailure(notLink.error, { name: 'BpfError', code: 'EOPNOTSUPP' });
      assert.equal(ipLink(NS_B, 'veth-b').xdp?.prog?.id, progs.xdp_filter);
      await B.ok({ op: 'detach', link: nl.link });
      nothingAttached();
    });
  });

  describe('tc', function () {
    it('tcx (the default) on veth-b ingress drops 7777 and passes 7778; detach() restores', async function () {
      const fds = await B.ok({ op: 'fds' });
      const c0 = await B.ok({ op: 'counters' });
      const link = await B.ok({ op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts: { direction: 'ingress' } });
      assert.equal(link.type, TCX);
      assert.equal(link.programId, progs.tc_filter);
      if (TCX === 'tcx') {
        assert.equal(kernelLink(link.id!)?.prog_id, progs.tc_filter);
        assert.doesNotMatch(tcFilters(NS_B, 'veth-b', 'ingress'), /tc_filter/, 'tcx is no tc filter');
      } else {
        assert.match(tcFilters(NS_B, 'veth-b', 'ingress'), /tc_filter/);
      }

      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      assertCounted(delta(c0, await B.ok({ op: 'counters' })), SLOT.TC, N);

      await B.ok({ op: 'detach', link: link.link });
      if (link.id !== undefined) assert.equal(kernelLink(link.id), undefined);
      nothingAttached();
      assert.deepEqual(await exchange(), { drop: N, pass: N });
      assert.equal(await B.ok({ op: 'fds' }), fds, 'open fds of the agent after detach()');
    });

    for (const [label, opts, shown] of [
      ['{ tcx: false }', { direction: 'ingress', tcx: false }, /filter protocol all pref \d+ bpf chain 0 handle 0x\w+ tc_filter/],
      ['{ priority: 1, handle: 1 }', { direction: 'ingress', priority: 1, handle: 1 }, /filter protocol all pref 1 bpf chain 0 handle 0x1 tc_filter/],
    ] as const) {
      it(`a classic tc filter with ${label}: tc filter show lists it while attached, not after; same effect`, async function () {
        const fds = await B.ok({ op: 'fds' });
        const c0 = await B.ok({ op: 'counters' });
        const link = await B.ok({ op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts });
        assert.equal(link.type, 'tc');
        assert.equal(link.id, undefined, 'no kernel link object');
        assert.equal(link.programId, progs.tc_filter);
        assert.match(tcFilters(NS_B, 'veth-b', 'ingress'), shown);
        assert.deepEqual(netShow(NS_B, 'veth-b').tc, [['veth-b', 'clsact/ingress', progs.tc_filter]]);

        assert.deepEqual(await exchange(), { drop: 0, pass: N });
        assertCounted(delta(c0, await B.ok({ op: 'counters' })), SLOT.TC, N);

        await B.ok({ op: 'detach', link: link.link });
        assert.doesNotMatch(tcFilters(NS_B, 'veth-b', 'ingress'), /tc_filter/);
        nothingAttached();
        assert.deepEqual(await exchange(), { drop: N, pass: N });
        await B.ok({ op: 'detach', link: link.link });
        assert.equal(await B.ok({ op: 'fds' }), fds, 'open fds of the agent after detach()');
      });
    }

    it('egress on veth-a in ns A drops on the sending side', async function () {
      const a0 = await A.ok({ op: 'counters' });
      const b0 = await B.ok({ op: 'counters' });
      const link = await A.ok({ op: 'attachTc', prog: 'tc_filter', iface: 'veth-a', opts: { direction: 'egress' } });
      assert.equal(link.type, TCX);
      assert.deepEqual(await exchange(), { drop: 0, pass: N });
      assertCounted(delta(a0, await A.ok({ op: 'counters' })), SLOT.TC, N);
      assert.deepEqual(delta(b0, await B.ok({ op: 'counters' })), [0, 0, 0, 0, 0, 0, 0, 0], "B's programs saw nothing");
      await A.ok({ op: 'detach', link: link.link });
      assert.doesNotMatch(tcFilters(NS_A, 'veth-a', 'egress'), /bpf/);
      if (link.id !== undefined) assert.equal(kernelLink(link.id), undefined);
      assert.deepEqual(await exchange(), { drop: N, pass: N });
    });
  });

  describe('sk_lookup on another namespace', function () {
    it('attachNetns(/run/netns/B) from this process: B does not deliver 7777 that came over the veth', async function () {
      const fds = openFds();
      const o = new BpfObject(obj('net_test')).load();
      try {
        const link = o.program('lookup_filter').attachNetns(`/run/netns/${NS_B}`);
        assert.equal(link.type, 'netns');
        assert.equal(kernelLink(link.id!)?.type, 'netns');
        const c0 = readPkts(o);
        assert.deepEqual(await exchange(), { drop: 0, pass: N });
        assertCounted(delta(c0, readPkts(o)), SLOT.SK_LOOKUP, N);
        link.detach();
        assert.equal(kernelLink(link.id!), undefined);
        assert.deepEqual(await exchange(), { drop: N, pass: N });
      } finally {
        o.close();
      }
      assert.equal(openFds(), fds, 'open fds after close()');
    });
  });

  describe('refused attachments on veth-b', function () {
    it('leave nothing attached and no fd open: wrong program types (kernel: EINVAL), wrong options (TypeError)', async function () {
      const cases: [AgentRequest, Want][] = [
        [{ op: 'attachXdp', prog: 'sock_drop', iface: 'veth-b' },
          { name: 'BpfError', code: 'EINVAL', op: 'bpf_link_create', target: new RegExp(`${ifindexB}\\b.*sock_drop`) }],
        [{ op: 'attachXdp', prog: 'sock_drop', iface: 'veth-b', opts: { replace: true } },
          { name: 'BpfError', code: 'EINVAL', op: 'bpf_xdp_attach', target: new RegExp(`ifindex ${ifindexB}\\b.*sock_drop`) }],
        [{ op: 'attachTc', prog: 'xdp_filter', iface: 'veth-b', opts: { direction: 'ingress' } },
          { name: 'BpfError', code: 'EINVAL', target: /xdp_filter/ }],
        [{ op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts: { direction: 'sideways' } },
          { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /direction.*sideways/ }],
        [{ op: 'attachTc', prog: 'tc_filter', iface: 'veth-b', opts: { direction: 'ingress', tcx: true, priority: 1 } },
          { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }],
        [{ op: 'attachXdp', prog: 'xdp_filter', iface: 'veth-b', opts: { mode: 'turbo' } },
          { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: /mode.*turbo/ }],
      ];
      for (const [req, want] of cases) {
        const { error, fds } = await B.fails(req);
        assertFailure(error, { bpfError: want.name === 'BpfError', ...want });
        assert.equal(fds[0], fds[1], `fds after ${JSON.stringify(req)}`);
        nothingAttached();
      }
      assert.deepEqual(await exchange(), { drop: N, pass: N });
    });
  });
});

// --- cgroup_skb/egress ----------------------------------------------------

/** Where cgroup v2 is mounted, mounting it when it is not. */
function cgroup2Root(): { root: string; mountedHere: boolean } {
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, where, type] = line.split(' ');
    if (type === 'cgroup2' && where) return { root: where, mountedHere: false };
  }
  const root = `/tmp/lbn-cgroup2-${process.pid}`;
  mkdirSync(root, { recursive: true });
  run('mount', ['-t', 'cgroup2', 'none', root]);
  return { root, mountedHere: true };
}

/** net-loopback (N datagrams to each port) in a new network namespace, inside `cgroup` when given. */
function loopback(args: string[], cgroup?: string): LoopbackReport {
  const fixture = path.join(FIXTURES, 'net-loopback.js');
  const script = cgroup === undefined
    ? 'ip link set lo up && exec "$@"'
    : 'echo $$ > "$CG/cgroup.procs" && ip link set lo up && exec "$@"';
  const out = execFileSync('unshare', ['--net', 'sh', '-c', script, 'sh', process.execPath, fixture, String(N), ...args],
    { encoding: 'utf8', timeout: 15_000, env: { ...process.env, CG: cgroup ?? '' } });
  return JSON.parse(out) as LoopbackReport;
}

describe('attach: cgroup_skb/egress on a cgroup of its own', function () {
  this.timeout(20_000);
  let cg: { root: string; mountedHere: boolean } | undefined;
  let dir: string;
  let o: BpfObject;

  before(function () {
    cg = cgroup2Root();
    dir = path.join(cg.root, `lbn-${process.pid}`);
    mkdirSync(dir);
  });
  after(function () {
    if (dir && existsSync(dir)) rmdirSync(dir); // every child has exited: the cgroup is empty
    if (cg?.mountedHere) {
      run('umount', [cg.root]);
      rmdirSync(cg.root);
    }
  });
  beforeEach(() => {
    o = new BpfObject(obj('net_test')).load();
  });
  afterEach(() => o.close());

  for (const opts of [undefined, { type: 'cgroup_inet_egress' as const }]) {
    it(`attachCgroup(dir${opts ? `, ${JSON.stringify(opts)}` : ''}): a process in it cannot send to 7777 (EPERM), 7778 arrives; detach() restores`, function () {
      const prog = o.program('cgroup_filter');
      const link = prog.attachCgroup(dir, opts);
      assert.equal(link.type, 'cgroup');
      assert.equal(link.programId, prog.id);
      assert.deepEqual(cgroupProgs(dir).map((p) => [p.id, p.attach_type, p.name]), [[prog.id, 'cgroup_inet_egress', 'cgroup_filter']]);

      const r = loopback([], dir);
      assert.deepEqual(r.received, { [DROP]: 0, [PASS]: N });
      assert.deepEqual(r.sendErrors, { [DROP]: Array.from({ length: N }, () => 'EPERM'), [PASS]: [] });
      // Only the child was in the cgroup: the counts are exact.
      assert.deepEqual(readPkts(o), [0, 0, 0, 0, N, N, 0, 0]);

      link.detach();
      link.detach();
      assert.deepEqual(cgroupProgs(dir), []);
      const after = loopback([], dir);
      assert.deepEqual(after.received, { [DROP]: N, [PASS]: N });
      assert.deepEqual(after.sendErrors, { [DROP]: [], [PASS]: [] });
      assert.deepEqual(readPkts(o), [0, 0, 0, 0, N, N, 0, 0]);
    });
  }

  it('attaching and detaching leaves no fd open', function () {
    withoutFdLeak(() => {
      o.program('cgroup_filter').attachCgroup(dir).detach();
      o.program('cgroup_filter').attachCgroup(dir, { type: 'cgroup_inet_egress' }).detach();
    });
    assert.deepEqual(cgroupProgs(dir), []);
  });
});

// --- sk_lookup in a namespace of its own ---------------------------------------

describe('attach: sk_lookup with attachNetns()', function () {
  this.timeout(20_000);

  it("in a fresh namespace, attachNetns() (this process's namespace): UDP to 127.0.0.1:7777 finds no socket, 7778 does", function () {
    const r = loopback(['--sk-lookup']);
    assert.equal(r.link?.type, 'netns');
    assert.equal(typeof r.link?.programId, 'number');
    assert.deepEqual(r.received, { [DROP]: 0, [PASS]: N });
    assert.deepEqual(r.sendErrors, { [DROP]: [], [PASS]: [] });
    // Lookups for the ICMP errors about 7777 pass too: passed is at least N.
    assertCounted(r.counters!, SLOT.SK_LOOKUP, N);
    assert.deepEqual(r.counters!.slice(0, 6), [0, 0, 0, 0, 0, 0]);
    assert.equal(r.afterDetach, N, 'after detach() 7777 is delivered');
    assert.equal(r.fds?.[0], r.fds?.[1], 'open fds before attach and after close');
  });
});

// --- sk_msg on a sockmap --------------------------------------------------------

describe('attach: sk_msg on a sockmap', function () {
  this.timeout(20_000);
  let o: BpfObject;
  let server: Server;
  let client: NetSocket | undefined;
  let got = '';

  beforeEach(async () => {
    o = new BpfObject(obj('net_test')).load();
    got = '';
    server = createServer((s) => s.on('data', (d: Buffer) => (got += d.toString())));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    client = connect((server.address() as { port: number }).port, '127.0.0.1');
    await once(client, 'connect');
  });
  afterEach(async () => {
    client?.destroy();
    server.close();
    await once(server, 'close');
    o.close();
  });

  const msgBytes = (): number => Number(o.map<number, bigint>('msg_bytes').lookup(0)!);
  const fdOf = (s: NetSocket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
  async function received(text: string): Promise<void> {
    const until = Date.now() + 2000;
    while (got.length < text.length && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got, text);
  }

  it("attachSockmap(sockets): count_msg counts what a TCP client in the map sends, which arrives intact; not after detach()", async function () {
    const prog = o.program('count_msg');
    const sockets = o.map('sockets');
    withoutFdLeak(() => prog.attachSockmap(sockets).detach());

    const link = prog.attachSockmap(sockets);
    assert.equal(link.type, 'prog_attach');
    assert.equal(link.programId, prog.id);
    assert.deepEqual(prog.links, [link]);
    sockets.update(0, BigInt(fdOf(client!)));

    client!.write('hello world');
    await received('hello world');
    assert.equal(msgBytes(), 11);

    link.detach();
    link.detach();
    assert.deepEqual(prog.links, []);
    // A socket keeps the programs its map had when it was added: added
    // again, it has none.
    sockets.delete(0);
    sockets.update(0, BigInt(fdOf(client!)));
    client!.write('again');
    await received('hello worldagain');
    assert.equal(msgBytes(), 11);
  });
});

// --- bad input in this process (nothing here can reach an interface) -----------

describe('attach: bad input', function () {
  let o: BpfObject;
  beforeEach(() => {
    o = new BpfObject(obj('net_test')).load();
  });
  afterEach(() => o.close());

  it("an interface that does not exist ('nope0'): BpfError ENODEV from if_nametoindex, naming it", function () {
    const xdp = o.program('xdp_filter');
    const tc = o.program('tc_filter');
    withoutFdLeak(() => {
      for (const attach of [() => xdp.attachXdp('nope0'), () => xdp.attachXdp('nope0', { replace: true }),
        () => tc.attachTc('nope0', { direction: 'ingress' }), () => tc.attachTc('nope0', { direction: 'egress', tcx: false })]) {
        throwsWith(attach, { code: 'ENODEV', op: 'if_nametoindex', target: 'nope0', message: /nope0/ }, BpfError);
      }
    });
    assert.deepEqual([...xdp.links, ...tc.links], []);
  });

  it('ifindex 999999: what the kernel says (EINVAL for an XDP link, ENODEV otherwise), naming it', function () {
    const present = readdirSync('/sys/class/net').map((d) => readFileSync(`/sys/class/net/${d}/ifindex`, 'utf8').trim());
    assert.ok(!present.includes('999999'), 'no interface has index 999999 here');
    const xdp = o.program('xdp_filter');
    const tc = o.program('tc_filter');
    withoutFdLeak(() => {
      throwsWith(() => xdp.attachXdp(999999), { code: 'EINVAL', op: 'bpf_link_create', target: /999999/ }, BpfError);
      throwsWith(() => xdp.attachXdp(999999, { replace: true }), { code: 'ENODEV', op: 'bpf_xdp_attach', target: /999999/ }, BpfError);
      throwsWith(() => tc.attachTc(999999, { direction: 'ingress' }), { code: 'ENODEV', target: /999999/ }, BpfError);
      throwsWith(() => tc.attachTc(999999, { direction: 'ingress', tcx: false }), { code: 'ENODEV', target: /999999/ }, BpfError);
    });
    assert.deepEqual([...xdp.links, ...tc.links], []);
  });

  it("attachCgroup on a path that does not exist: Node's ENOENT; on a directory that is no cgroup: BpfError EBADF naming it", function () {
    const prog = o.program('cgroup_filter');
    const missing = `/nonexistent-lbn-${process.pid}`;
    withoutFdLeak(() => {
      for (const opts of [undefined, { type: 'cgroup_inet_egress' as const }]) {
        throwsWith(() => prog.attachCgroup(missing, opts), { code: 'ENOENT', syscall: 'open', path: missing });
        throwsWith(() => prog.attachCgroup('/tmp', opts), { code: 'EBADF', message: /\/tmp/ }, BpfError);
      }
      throwsWith(() => prog.attachCgroup('/tmp', { type: 'sideways' as never }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
    });
    assert.deepEqual(prog.links, []);
  });

  it('attachNetns on something that is no network namespace: ENOENT, or BpfError EINVAL naming it', function () {
    const prog = o.program('lookup_filter');
    withoutFdLeak(() => {
      throwsWith(() => prog.attachNetns(`/nonexistent-lbn-${process.pid}`), { code: 'ENOENT', syscall: 'open' });
      throwsWith(() => prog.attachNetns('/proc/self/ns/mnt'), { code: 'EINVAL', message: /\/proc\/self\/ns\/mnt/ }, BpfError);
    });
    assert.deepEqual(prog.links, []);
  });

  it('attachSockmap on a map that is no sockmap: BpfError (kernel: EOPNOTSUPP) naming the map', function () {
    const prog = o.program('count_msg');
    withoutFdLeak(() => {
      throwsWith(() => prog.attachSockmap(o.map('pkts')), { code: 'EOPNOTSUPP', op: 'bpf_prog_attach', message: /pkts/ }, BpfError);
    });
    assert.deepEqual(prog.links, []);
  });
});
