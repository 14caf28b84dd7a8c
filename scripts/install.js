#!/usr/bin/env node
// npm's install step. The prebuilt addon is used when it loads here (as
// node-gyp-build's own install step does); otherwise the addon is built from
// source, but only after checking what the build needs, so a user missing
// libbpf-dev or pkg-config reads the package names instead of node-gyp's
// "You need to install the latest version of Python". Plain JavaScript: it
// runs before anything is compiled.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.join(__dirname, '..');

function loads() {
  try {
    require('node-gyp-build')(root);
    return undefined;
  } catch (e) {
    return e.message.split('\n')[0];
  }
}

function has(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

// What the build needs, each with its package on Debian/Ubuntu, Fedora and Arch.
const NEEDS = [
  { what: 'python3 (node-gyp)', ok: () => has('python3') || has('python'), deb: 'python3', rpm: 'python3', arch: 'python' },
  { what: 'make', ok: () => has('make'), deb: 'make', rpm: 'make', arch: 'make' },
  { what: 'a C++ compiler', ok: () => has(process.env.CXX || 'c++') || has('g++') || has('clang++'), deb: 'g++', rpm: 'gcc-c++', arch: 'gcc' },
  { what: 'pkg-config', ok: () => has('pkg-config'), deb: 'pkg-config', rpm: 'pkgconf-pkg-config', arch: 'pkgconf' },
  { what: 'libbpf 1.1 or newer, with headers', ok: () => has('pkg-config', ['--atleast-version=1.1', 'libbpf']), deb: 'libbpf-dev', rpm: 'libbpf-devel', arch: 'libbpf' },
  { what: 'libelf headers', ok: () => has('pkg-config', ['--exists', 'libelf']), deb: 'libelf-dev', rpm: 'elfutils-libelf-devel', arch: 'libelf' },
  { what: 'zlib headers', ok: () => has('pkg-config', ['--exists', 'zlib']), deb: 'zlib1g-dev', rpm: 'zlib-devel', arch: 'zlib' },
];

function main() {
  let reason;
  if (process.env.LIBBPF_NODE_FORCE_BUILD === undefined) {
    reason = loads();
    if (reason === undefined) return 0;
    console.error(`libbpf-node: the prebuilt addon does not load here (${reason}); building it from source.`);
  }
  const missing = NEEDS.filter((n) => !n.ok());
  if (missing.length > 0) {
    const pkgs = (k) => [...new Set(missing.map((n) => n[k]))].join(' ');
    console.error(
      `libbpf-node: cannot build the addon: missing ${missing.map((n) => n.what).join('; ')}.\n` +
      'Install them, then run `npm rebuild libbpf-node`:\n' +
      `    apt-get install ${pkgs('deb')}      # Debian, Ubuntu\n` +
      `    dnf install ${pkgs('rpm')}      # Fedora, RHEL\n` +
      `    pacman -S ${pkgs('arch')}      # Arch\n` +
      (/libbpf\.so/.test(reason ?? '')
        ? 'Or, to use the prebuilt addon, install only the runtime library: apt-get install libbpf1 (Debian, Ubuntu), dnf install libbpf (Fedora), pacman -S libbpf (Arch).'
        : ''));
    return 1;
  }
  // npm puts its own node-gyp on PATH for install scripts; npm_config_node_gyp names it otherwise.
  const gyp = process.env.npm_config_node_gyp;
  const r = gyp
    ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' })
    : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`libbpf-node: cannot run node-gyp: ${r.error.message}`);
    return 1;
  }
  return r.status ?? 1;
}

process.exitCode = main();
