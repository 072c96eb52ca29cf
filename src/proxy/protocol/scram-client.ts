// The client side of SCRAM-SHA-256 (RFC 5802/7677), for the proxy's own logins
// to Postgres (server connections). The password here is the proxy's server
// credential, never a client's.

import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

export class ScramClient {
  private readonly nonce = randomBytes(18).toString('base64');
  private readonly clientFirstBare = `n=*,r=${this.nonce}`;
  private serverSignature: Buffer | null = null;

  constructor(private readonly password: string) {}

  /** client-first-message (no channel binding: "n,,"). */
  first(): string {
    return `n,,${this.clientFirstBare}`;
  }

  /** server-first-message -> client-final-message; throws when the server's message is wrong. */
  final(serverFirst: string): string {
    const attrs = parseAttrs(serverFirst);
    const r = attrs.get('r');
    const s = attrs.get('s');
    const i = Number(attrs.get('i'));
    if (!r || !s || !Number.isInteger(i) || i < 1 || i > 10_000_000)
      throw new Error(`SCRAM: malformed server-first-message ${JSON.stringify(serverFirst.slice(0, 200))}`);
    if (!r.startsWith(this.nonce) || r.length === this.nonce.length) throw new Error('SCRAM: the server nonce does not extend the client nonce');
    const salted = pbkdf2Sync(this.password.normalize('NFKC'), Buffer.from(s, 'base64'), i, 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const storedKey = createHash('sha256').update(clientKey).digest();
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.alloc(32);
    for (let k = 0; k < 32; k++) proof[k] = clientKey[k]! ^ clientSignature[k]!;
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();
    this.serverSignature = createHmac('sha256', serverKey).update(authMessage).digest();
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** server-final-message: throws unless it proves the server knows the verifier. */
  verify(serverFinal: string): void {
    const v = parseAttrs(serverFinal).get('v');
    const got = v ? Buffer.from(v, 'base64') : Buffer.alloc(0);
    if (this.serverSignature === null || got.length !== 32 || !timingSafeEqual(got, this.serverSignature)) {
      throw new Error('SCRAM: the server signature does not match');
    }
  }
}

function parseAttrs(msg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) out.set(part[0]!, part.slice(2));
  }
  return out;
}
