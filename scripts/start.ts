// `npm start`: `ogel up`, a local cluster on this machine (see src/local/up.ts).
// Arguments after `npm start --` are passed on, e.g. `npm start -- --nodes 5`.
//
// It runs in this process, and package.json starts it with `exec`, so the
// SIGINT or SIGTERM that npm forwards (from a supervisor, a CI step or `kill`)
// reaches `ogel up` itself: without `exec`, npm signals the shell, which dies
// and leaves the cluster running with no owner.
import { runUp } from '../src/local/up.js';

process.exit(await runUp(process.argv.slice(2)));
