import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { formatPostgresVerifier, generatePassword, makeScramVerifier } from './scram.js';

describe('SCRAM-SHA-256 verifiers', () => {
  it('reproduce the RFC 7677 SCRAM-SHA-256 example exchange', () => {
    // RFC 7677 §3: user "user", password "pencil". With our verifier, the server
    // signature must equal the RFC's, and H(ClientProof XOR ClientSignature) must
    // equal our StoredKey: both keys are then exactly what the RFC defines.
    const v = makeScramVerifier('pencil', 4096, Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'));
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    const serverSignature = createHmac('sha256', Buffer.from(v.serverKey, 'base64')).update(authMessage).digest('base64');
    assert.equal(serverSignature, '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
    const clientSignature = createHmac('sha256', Buffer.from(v.storedKey, 'base64')).update(authMessage).digest();
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const clientKey = Buffer.from(proof.map((x, i) => x ^ clientSignature[i]!));
    assert.equal(createHash('sha256').update(clientKey).digest('base64'), v.storedKey);
    assert.equal(formatPostgresVerifier(v), `SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$${v.storedKey}:${v.serverKey}`);
  });

  it('differ for different salts and passwords, and never contain the password', () => {
    const a = makeScramVerifier('pw-one-123');
    const b = makeScramVerifier('pw-one-123');
    assert.notEqual(a.salt, b.salt);
    assert.notEqual(a.storedKey, b.storedKey);
    assert.ok(!JSON.stringify(a).includes('pw-one-123'));
  });

  it('generates URL-safe passwords', () => {
    const p = generatePassword();
    assert.match(p, /^[A-Za-z0-9_-]{24}$/);
  });
});
