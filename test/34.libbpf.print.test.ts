// libbpf's voice: setLibbpfPrint() and the default (warnings of successful
// calls become process warnings), with BpfError's captured log unchanged.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BpfError, BpfObject, VerifierError, setLibbpfPrint, type LibbpfPrintLevel } from '../ts/index.js';
import { obj, throwsWith } from './helpers.js';

// print_test.bpf.o with its struct renamed to a name the kernel refuses:
// libbpf warns that the BTF failed to load, and loads the program anyway.
function badBtfObject(): Buffer {
  const buf = readFileSync(obj('print_test'));
  const at = buf.indexOf('lbn_bad_name');
  assert.ok(at > 0);
  buf.write('lbn-bad-name', at);
  return buf;
}

/** The process warnings emitted while `fn` runs and shortly after (messages arrive on the event loop). */
async function warningsDuring(fn: () => unknown): Promise<Error[]> {
  const seen: Error[] = [];
  const on = (w: Error): void => { seen.push(w); };
  process.on('warning', on);
  try {
    await fn();
    await sleep(50);
  } finally {
    process.off('warning', on);
  }
  return seen;
}

describe("libbpf's voice: setLibbpfPrint() and process warnings", function () {
  afterEach(() => setLibbpfPrint(null));

  it('setLibbpfPrint() receives libbpf\'s debug lines of a load, with levels; null stops them', async function () {
    const got: [LibbpfPrintLevel, string][] = [];
    assert.equal(setLibbpfPrint((level, message) => got.push([level, message])), null);
    {
      using o = new BpfObject(obj('info_test'));
      o.load();
    }
    await sleep(20);
    assert.ok(got.length > 5, `${got.length} messages`);
    assert.ok(got.some(([l, m]) => l === 'debug' && /libbpf: .*info_count/.test(m)), 'a debug line naming a program');
    assert.ok(got.every(([l, m]) => ['warn', 'info', 'debug'].includes(l) && m.startsWith('libbpf: ') && !m.endsWith('\n')));
    const n = got.length;
    const previous = setLibbpfPrint(null);
    assert.equal(typeof previous, 'function');
    {
      using o = new BpfObject(obj('info_test'));
      o.load();
    }
    await sleep(20);
    assert.equal(got.length, n, 'nothing after the reset');
  });

  it("opts.level 'warn' passes only warnings: the BTF warning of a load that succeeds, no debug lines", async function () {
    const got: [LibbpfPrintLevel, string][] = [];
    setLibbpfPrint((level, message) => got.push([level, message]), { level: 'warn' });
    const warnings = await warningsDuring(() => {
      using o = BpfObject.fromBuffer(badBtfObject()).load();
      assert.equal(o.program('print_prog').testRun({ data: Buffer.alloc(64) }).retval, 0);
    });
    assert.ok(got.length > 0 && got.every(([l]) => l === 'warn'), JSON.stringify(got.map(([l]) => l)));
    // libbpf 1.1 warns 'BTF is optional, ignoring'; 1.7 warns with the kernel's BTF log (the conclusion is info)
    assert.ok(got.some(([, m]) => /BTF is optional, ignoring|BEGIN BTF LOAD LOG/.test(m)), JSON.stringify(got));
    assert.deepEqual(warnings.filter((w) => w.name === 'LibbpfWarning'), [], 'a callback replaces the process warnings');
  });

  it('by default, a libbpf warning of a call that succeeded is one process warning (LibbpfWarning, LIBBPF_WARN)', async function () {
    const warnings = await warningsDuring(() => {
      using o = BpfObject.fromBuffer(badBtfObject()).load();
      assert.ok(o.program('print_prog').fd > 0);
    });
    const ours = warnings.filter((w) => w.name === 'LibbpfWarning');
    assert.equal(ours.length, 1, ours.map((w) => w.message).join(' | '));
    // one line: libbpf 1.1's conclusion, or the first line of libbpf 1.7's BTF log warning
    assert.match(ours[0]!.message, /^libbpf: (Error loading \.BTF into kernel: -?\w+\. BTF is optional, ignoring\.|-- BEGIN BTF LOAD LOG ---)$/);
    assert.equal((ours[0] as Error & { code?: string }).code, 'LIBBPF_WARN');
    assert.match((ours[0] as Error & { detail?: string }).detail ?? '', /Invalid name/);
  });

  it('a loadAsync() on a worker thread delivers its messages too', async function () {
    const got: string[] = [];
    setLibbpfPrint((_l, m) => got.push(m));
    const warnings = await warningsDuring(async () => {
      using o = BpfObject.fromBuffer(badBtfObject());
      await o.loadAsync();
    });
    assert.ok(got.some((m) => /BTF is optional/.test(m)));
    assert.equal(warnings.filter((w) => w.name === 'LibbpfWarning').length, 0);
  });

  it("a failed call's warnings are in its BpfError's log, not process warnings; the callback still sees them", async function () {
    let err: Error | undefined;
    const warnings = await warningsDuring(() => {
      using o = new BpfObject(obj('verifier_reject'));
      err = throwsWith(() => o.load(), { op: 'bpf_object__load' }, BpfError);
    });
    assert.ok(err instanceof VerifierError || err instanceof BpfError);
    assert.match((err as BpfError).log, /libbpf: /);
    assert.deepEqual(warnings.filter((w) => w.name === 'LibbpfWarning').map((w) => w.message), []);

    const got: [LibbpfPrintLevel, string][] = [];
    setLibbpfPrint((level, message) => got.push([level, message]));
    {
      using o = new BpfObject(obj('verifier_reject'));
      throwsWith(() => o.load(), { op: 'bpf_object__load' }, BpfError);
    }
    await sleep(20);
    assert.ok(got.some(([l]) => l === 'warn'), 'the load failure was printed at warn level');
  });

  it('setLibbpfPrint() checks its arguments', function () {
    throwsWith(() => setLibbpfPrint('x' as never), { code: 'ERR_INVALID_ARG_TYPE' }, TypeError);
    throwsWith(() => setLibbpfPrint(() => {}, { level: 'loud' as never }), { code: 'ERR_INVALID_ARG_VALUE' }, TypeError);
  });
});
