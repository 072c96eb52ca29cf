// Client sockets read into one buffer shared by every client connection, instead
// of Node's default (a fresh 64 KiB allocation per read, then the Readable
// stream's push and 'data' machinery). The reader gets a view of the shared
// buffer, valid only during the call: it must copy it out at once (the session
// does), so nothing downstream (framer, pending messages, retry window, a write
// queued behind a busy server) ever references memory that the next read, of any
// client, overwrites; and an idle client costs no buffer of its own.
//
// net.Socket's documented `onread` option exists only for sockets the program
// creates; an accepted socket gets it through the same internal fields the
// option sets (found on a socket made with the option, so a Node version without
// them just keeps the default path). The socket must not have started reading
// (the listener uses pauseOnConnect).

import net from 'node:net';

type OnreadFields = { buffer: symbol; callback: symbol };

const fields: OnreadFields | null = discover();

function discover(): OnreadFields | null {
  try {
    const buffer = Buffer.alloc(1);
    const callback = (): boolean => true;
    // The option is honoured by the constructor too (the types name it only for connect()).
    const probe = new net.Socket({ onread: { buffer, callback } } as net.SocketConstructorOpts);
    let b: symbol | undefined;
    let c: symbol | undefined;
    let gen = false;
    for (const k of Object.getOwnPropertySymbols(probe)) {
      const v = (probe as unknown as Record<symbol, unknown>)[k];
      if (v === buffer && k.description === 'kBuffer') b = k;
      else if (v === callback && k.description === 'kBufferCb') c = k;
      else if (v === null && k.description === 'kBufferGen') gen = true;
    }
    probe.destroy();
    return b !== undefined && c !== undefined && gen ? { buffer: b, callback: c } : null;
  } catch {
    return null;
  }
}

/** Shared reads are possible on this Node. */
export const sharedReadsSupported = fields !== null;

const SHARED_READ_BYTES = 64 * 1024;
const shared = Buffer.allocUnsafeSlow(SHARED_READ_BYTES);

/**
 * Makes a not yet reading socket read into the shared buffer and hand each
 * chunk to onView (a view of the shared buffer: copy it before returning);
 * starts reading. Returns false when it cannot (the caller then uses 'data'
 * events).
 */
export function readShared(socket: net.Socket, onView: (view: Buffer) => void): boolean {
  if (fields === null) return false;
  const handle = (socket as unknown as { _handle?: { reading?: boolean; useUserBuffer?: (b: Uint8Array) => void } })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || handle.reading) return false;
  const s = socket as unknown as Record<symbol, unknown>;
  s[fields.buffer] = shared;
  s[fields.callback] = (n: number, buf: Buffer): boolean => {
    onView(buf.subarray(0, n));
    return true; // pausing is pause()'s job
  };
  handle.useUserBuffer(shared);
  socket.resume();
  return true;
}
