import { BankWorkload } from './bank.js';
import { RegisterWorkload } from './register.js';
import { SetWorkload } from './set.js';
import type { Workload, WorkloadName } from './types.js';

export type { OpResult, OpSpec, RunContext, Workload, WorkloadName } from './types.js';

export const WORKLOAD_NAMES: readonly WorkloadName[] = ['register', 'set', 'bank'];

export function makeWorkload(name: WorkloadName): Workload {
  switch (name) {
    case 'set':
      return new SetWorkload();
    case 'register':
      return new RegisterWorkload();
    case 'bank':
      return new BankWorkload();
  }
}
