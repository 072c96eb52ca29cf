// SIGINT and SIGTERM for long-running commands (`ogel up`, `ogel daemon`): the
// first asks for a graceful stop, a second one forces it, as supervisors and
// users expect (docker stop, systemd, Ctrl-C twice).
//
// One Ctrl-C in a terminal can arrive twice: the terminal signals the whole
// foreground process group, and `npm start` forwards the SIGINT it got to its
// child as well. A repeat within SIGNAL_REPEAT_MS of the first is therefore the
// same request, not a second one.

export const SIGNAL_REPEAT_MS = 1_000;

export type StopSignal = 'SIGINT' | 'SIGTERM';

export interface StopSignalHandlers {
  graceful(signal: StopSignal): void;
  force(signal: StopSignal): void;
}

/** Installs the handlers; returns a function that removes them. */
export function onStopSignals(handlers: StopSignalHandlers, nowMs: () => number = () => performance.now()): () => void {
  let firstAtMs: number | undefined;
  let forced = false;
  const on = (signal: StopSignal) => {
    const now = nowMs();
    if (firstAtMs === undefined) {
      firstAtMs = now;
      handlers.graceful(signal);
      return;
    }
    if (forced || now - firstAtMs < SIGNAL_REPEAT_MS) return;
    forced = true;
    handlers.force(signal);
  };
  const onInt = () => on('SIGINT');
  const onTerm = () => on('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return () => {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  };
}
