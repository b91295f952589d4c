import { createHash, timingSafeEqual } from 'node:crypto';

/** PKCE (RFC 7636), S256 only: `plain` would let anyone who sees the authorization request redeem the code. */
const PKCE_VALUE = /^[A-Za-z0-9\-._~]{43,128}$/;

export function isValidCodeChallenge(challenge: string | undefined): challenge is string {
  return !!challenge && /^[A-Za-z0-9_-]{43}$/.test(challenge);
}

export function pkceMatches(verifier: string | undefined, challenge: string): boolean {
  if (!verifier || !PKCE_VALUE.test(verifier)) {
    return false;
  }
  const computed = Buffer.from(createHash('sha256').update(verifier).digest('base64url'));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
