// `ogel up`: a local cluster on this machine (src/local/up.ts).
import { runUp } from '../../local/up.js';

export function run(argv: string[]): Promise<number> {
  return runUp(argv);
}
