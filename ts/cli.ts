#!/usr/bin/env node
// libbpf-node gen skeleton OBJECT [-o FILE] [--name CLASS] [--embed]
//                                 [--import MODULE] [--object-path PATH]
//                                 [--types TYPES.bpf.o] [--event MAP=TYPE]...
import { writeFileSync } from 'node:fs';
import { generateSkeleton, type SkeletonOptions } from './skeleton.js';

function usage(): never {
  console.error('usage: libbpf-node gen skeleton OBJECT.bpf.o [-o FILE.skel.ts] [--name CLASS] [--embed] [--import MODULE] [--object-path PATH]\n' +
    '                                 [--types TYPES.bpf.o] [--event MAP=TYPE]...\n' +
    '  --types    a BPF object whose BTF holds the types shared with user space (clang -g -target bpf -c types.c)\n' +
    '  --event    the record type of a ring or perf buffer map, e.g. --event events=\'struct event\'\n' +
    'example: libbpf-node gen skeleton execsnoop.bpf.o --types execsnoop_types.bpf.o --event events=\'struct event\' -o execsnoop.skel.ts');
  process.exit(2);
}

function main(argv: string[]): void {
  if (argv[0] !== 'gen' || argv[1] !== 'skeleton' || !argv[2]) usage();
  const file = argv[2];
  const opts: SkeletonOptions = {};
  let out: string | undefined;
  for (let i = 3; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => argv[++i] ?? usage();
    if (a === '-o') out = next();
    else if (a === '--name') opts.name = next();
    else if (a === '--embed') opts.embed = true;
    else if (a === '--import') opts.importFrom = next();
    else if (a === '--object-path') opts.objectPath = next();
    else if (a === '--types') opts.types = next();
    else if (a === '--event') {
      const m = /^([^=]+)=(.+)$/.exec(next());
      if (!m) usage();
      opts.events = { ...opts.events, [m[1]!]: m[2]! };
    }
    else usage();
  }
  const source = generateSkeleton(file, opts);
  if (out) writeFileSync(out, source);
  else process.stdout.write(source);
}

try {
  main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
}
