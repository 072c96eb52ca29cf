// `npm start`: `ogel up`, a local cluster on this machine (see src/local/up.ts).
// Arguments after `npm start --` are passed on, e.g. `npm start -- --nodes 5`.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const child = spawn(process.execPath, [cli, 'up', ...process.argv.slice(2)], { stdio: 'inherit' });
// Ctrl-C reaches the child through the terminal's process group; a SIGTERM sent
// to this process alone is passed on, so the cluster always stops cleanly.
process.on('SIGTERM', () => child.kill('SIGTERM'));
process.on('SIGINT', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
