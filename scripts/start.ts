// `npm start`: will run a local 3-node cluster (`ogel up`). Until the daemon exists
// it says so plainly and fails, rather than pretending to start something.
console.error('ogel: the daemon and the local cluster (`ogel up`) are not built yet; only the raft/ library exists so far.');
console.error('ogel: try `npm test` or `npm run sim -- --seeds 100`.');
process.exit(1);
