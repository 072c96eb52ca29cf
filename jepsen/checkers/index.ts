export { check, WORKLOADS, type CheckOptions, type CheckReport, type CheckStats, type Workload } from './check.js';
export { checkRegister, registerModel, stepRegister, toRegisterOp, type RegisterInput, type RegisterOptions, type RegisterStats } from './register.js';
export { checkSet, type SetOptions, type SetStats } from './set.js';
export { checkBank, type BankOptions, type BankStats } from './bank.js';
export { checkOneWriter, type OneWriterOptions, type OneWriterStats } from './one-writer.js';
export { searchLinearization, type WglBudget, type WglModel, type WglOp, type WglOutcome } from './wgl.js';
export * from './types.js';
export { checkArchive, type ArchiveObservation, type ArchiveStats } from './archive.js';
