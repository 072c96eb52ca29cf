#!/usr/bin/env node
// The `ogel` command. The daemon, admin API and cluster commands arrive with the
// daemon; until then every command says so plainly and fails, rather than pretend.

import { readFileSync } from 'node:fs';

const HELP = `ogel: OgelBase control plane CLI

Usage: ogel <command> [options]

Commands (not built yet: they arrive with the daemon):
  up                      start a local 3-node cluster
  status                  cluster status table
  transfer-leadership     move Raft leadership
  daemon                  run one node

Available now:
  --help, -h              this text
  --version               the version

The consensus library (raft/) is usable on its own: see raft/README.md.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const args = process.argv.slice(2);
if (args.length === 0 || args[0] === '--help' || args[0] === '-h' || args[0] === 'help') {
  console.log(HELP);
  process.exit(args.length === 0 ? 2 : 0);
}
if (args[0] === '--version') {
  console.log(version());
  process.exit(0);
}
console.error(`ogel: '${args[0]}' is not available yet: the daemon, API and CLI are not built; only the raft/ library exists so far.`);
console.error("ogel: run 'ogel --help' for what is available.");
process.exit(1);
