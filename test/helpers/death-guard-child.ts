// Test helper process: starts a temporary primary, prints its postmaster PID and
// root directory as JSON, then idles until it is killed.
import { makeTempPrimary } from './postgres.js';

const p = await makeTempPrimary();
process.stdout.write(`${JSON.stringify({ pid: p.pg.pid, root: p.root })}\n`);
setInterval(() => {}, 60_000);
