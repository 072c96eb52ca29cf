export type { CompletionType, History, Json, Key, Op, OpType } from './types.js';
export { HistoryError } from './errors.js';
export { isJson, isKey, parseOp } from './validate.js';
export { countOperations, DEFAULT_MAX_EVENTS, pairHistory, type HistoryCounts, type Operation, type PairOptions } from './pair.js';
export { writeAvailability, type WriteAvailability } from './availability.js';
export { readJsonl, writeJsonl, type ReadJsonlOptions } from './jsonl.js';
export {
  DEFAULT_RECORDER_MAX_EVENTS,
  HistoryFullError,
  HistoryRecorder,
  type CompleteFields,
  type InvokeFields,
  type RecorderOptions,
} from './recorder.js';
