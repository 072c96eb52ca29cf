// `npm start`: runs `ogel up`, the local 3-node cluster. Until the daemon exists,
// `ogel up` says so plainly and fails rather than pretend to start something.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cli = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const r = spawnSync(process.execPath, [cli, 'up', ...process.argv.slice(2)], { stdio: 'inherit' });
if (r.status !== 0) console.error('npm start: meanwhile, `npm test` and `npm run sim -- --seeds 100` show what exists.');
process.exit(r.status ?? 1);
