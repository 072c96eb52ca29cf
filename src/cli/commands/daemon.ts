// `ogel daemon`: runs one node (src/daemon/command.ts).
import { runDaemonCommand } from '../../daemon/command.js';

export function run(argv: string[]): Promise<number> {
  return runDaemonCommand(argv);
}
