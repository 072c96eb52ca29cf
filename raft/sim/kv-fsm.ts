// The small key-value state machine the simulation and the benchmark replicate.
// Commands are JSON (tiny, deterministic to encode); the state is a sorted map so
// that snapshots of equal states are byte-identical.

export type KvCommand = { op: 'put'; key: string; value: string } | { op: 'cas'; key: string; from: string; to: string };

export type KvResult = { ok: boolean; value?: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

export function decodeKvCommand(data: Uint8Array): KvCommand {
  const v: unknown = JSON.parse(decoder.decode(data));
  if (typeof v !== 'object' || v === null) throw new Error('kv command: not an object');
  const o = v as Record<string, unknown>;
  if (o.op === 'put' && typeof o.key === 'string' && typeof o.value === 'string') {
    return { op: 'put', key: o.key, value: o.value };
  }
  if (o.op === 'cas' && typeof o.key === 'string' && typeof o.from === 'string' && typeof o.to === 'string') {
    return { op: 'cas', key: o.key, from: o.from, to: o.to };
  }
  throw new Error(`kv command: unknown shape ${JSON.stringify(v).slice(0, 80)}`);
}

export class KvStateMachine {
  private data = new Map<string, string>();

  apply(cmd: KvCommand): KvResult {
    switch (cmd.op) {
      case 'put':
        this.data.set(cmd.key, cmd.value);
        return { ok: true };
      case 'cas': {
        const cur = this.data.get(cmd.key);
        if (cur !== cmd.from) return cur === undefined ? { ok: false } : { ok: false, value: cur };
        this.data.set(cmd.key, cmd.to);
        return { ok: true };
      }
    }
  }

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  size(): number {
    return this.data.size;
  }

  snapshot(): Uint8Array {
    const entries = [...this.data.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return encoder.encode(JSON.stringify(entries));
  }

  restore(data: Uint8Array): void {
    this.data = new Map(data.byteLength === 0 ? [] : (JSON.parse(decoder.decode(data)) as [string, string][]));
  }
}
