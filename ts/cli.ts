#!/usr/bin/env node
// libbpf-node gen skeleton OBJECT [-o FILE] [--name CLASS] [--embed]
//                                 [--import MODULE] [--object-path PATH]
import { writeFileSync } from 'node:fs';
import { generateSkeleton, type SkeletonOptions } from './skeleton.js';

function usage(): never {
  console.error('usage: libbpf-node gen skeleton OBJECT.bpf.o [-o FILE.skel.ts] [--name CLASS] [--embed] [--import MODULE] [--object-path PATH]');
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
