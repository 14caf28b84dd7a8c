#!/usr/bin/env node
// The libbpf-node command: `gen skeleton` (TypeScript for a BPF object, as
// `bpftool gen skeleton` writes C). Options are parsed by node:util's
// parseArgs (strict); help goes to stdout with status 0, misuse to stderr
// with status 2, and a failure (a missing object, an unknown map) is one
// line with status 1.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { generateSkeleton, type SkeletonOptions } from './skeleton.js';

const MAIN_HELP = `Usage: libbpf-node COMMAND [options]

Commands:
  gen skeleton OBJECT.bpf.o   write a typed TypeScript skeleton for a BPF object

Options:
  -h, --help      show this help (or a command's: libbpf-node gen skeleton --help)
  -v, --version   print the version of libbpf-node and of the libbpf it uses
`;

const SKELETON_HELP = `Usage: libbpf-node gen skeleton OBJECT.bpf.o [options]

Writes a TypeScript class that opens OBJECT (embedded, or by path) with its
maps, programs and global variables typed from its BTF.

Options:
  -o, --output FILE       write to FILE (default: standard output)
      --name CLASS        the class name (default: from the file name, e.g. RunqlatSkeleton)
      --embed             put the object in the skeleton (base64) instead of opening it by path
      --object-path PATH  where the object is, relative to the compiled skeleton (default: beside it)
      --module esm|cjs    how the skeleton finds the object: import.meta.url (esm) or __dirname (cjs);
                          default: from the output's extension (.mts/.cts) or the nearest package.json "type"
      --import MODULE     the module to import the library from (default: libbpf-node)
      --types FILE        a BPF object whose BTF holds types shared with user space
                          (clang -g -target bpf -c types.c): exported as interfaces
      --event MAP=TYPE    the record type of a ring or perf buffer map (repeatable): the
                          skeleton gets stream<Map>() typed by it
  -h, --help              show this help

Examples:
  libbpf-node gen skeleton runqlat.bpf.o -o runqlat.skel.ts
  libbpf-node gen skeleton sock.bpf.o --embed -o sock.skel.ts
  libbpf-node gen skeleton execsnoop.bpf.o --types execsnoop_types.bpf.o --event events='struct event' -o execsnoop.skel.ts
`;

class Usage extends Error {}

/** The module kind of the project an output file lands in. */
function moduleKind(out: string | undefined): 'esm' | 'cjs' {
  if (out?.endsWith('.mts')) return 'esm';
  if (out?.endsWith('.cts')) return 'cjs';
  for (let dir = path.resolve(out ? path.dirname(out) : '.'); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg)) return (JSON.parse(readFileSync(pkg, 'utf8')) as { type?: string }).type === 'module' ? 'esm' : 'cjs';
    if (path.dirname(dir) === dir) return 'cjs';
  }
}

function genSkeleton(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      name: { type: 'string' },
      embed: { type: 'boolean' },
      'object-path': { type: 'string' },
      module: { type: 'string' },
      import: { type: 'string' },
      types: { type: 'string' },
      event: { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SKELETON_HELP);
    return;
  }
  if (positionals.length !== 1) throw new Usage(positionals.length ? `one object expected, got ${positionals.join(' ')}` : 'the BPF object to read is missing');
  if (values.module !== undefined && values.module !== 'esm' && values.module !== 'cjs') throw new Usage(`--module must be esm or cjs, got '${values.module}'`);
  const opts: SkeletonOptions = { module: (values.module as 'esm' | 'cjs' | undefined) ?? moduleKind(values.output) };
  if (values.name !== undefined) opts.name = values.name;
  if (values.embed) opts.embed = true;
  if (values.import !== undefined) opts.importFrom = values.import;
  if (values['object-path'] !== undefined) opts.objectPath = values['object-path'];
  if (values.types !== undefined) opts.types = values.types;
  for (const e of values.event ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(e);
    if (!m) throw new Usage(`--event takes MAP=TYPE (e.g. events='struct event'), got '${e}'`);
    opts.events = { ...opts.events, [m[1]!]: m[2]! };
  }
  const source = generateSkeleton(positionals[0]!, opts);
  if (values.output) writeFileSync(values.output, source);
  else process.stdout.write(source);
}

function version(): string {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  // The addon is loaded only here: --help must work where it cannot load.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { libbpfVersion } = require('./index.js') as typeof import('./index.js');
  return `libbpf-node ${pkg.version} (libbpf ${libbpfVersion})\n`;
}

function main(argv: string[]): void {
  if (argv[0] === 'gen' && argv[1] === 'skeleton') return genSkeleton(argv.slice(2));
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
  });
  if (values.help) return void process.stdout.write(MAIN_HELP);
  if (values.version) return void process.stdout.write(version());
  if (positionals[0] === 'gen') throw new Usage(positionals[1] ? `unknown generator '${positionals[1]}' (try: gen skeleton)` : 'gen what? (try: gen skeleton)');
  throw new Usage(positionals.length ? `unknown command '${positionals[0]}'` : 'a command is missing');
}

try {
  main(process.argv.slice(2));
} catch (e) {
  const usage = e instanceof Usage || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`libbpf-node: ${e instanceof Error ? e.message : String(e)}\n`);
  if (usage) process.stderr.write(`Try 'libbpf-node --help'.\n`);
  process.exitCode = usage ? 2 : 1;
}
