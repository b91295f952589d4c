import { createHash, randomBytes } from 'node:crypto';
import { jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { SIGNING_ALG, type SigningKey } from '../security/signing-key.js';

/**
 * State carried by the sign-in pages between requests, signed so that it cannot be altered, and tied to
 * the browser by a random value in an HttpOnly cookie (the token holds its hash): a form posted from
 * another site, or with state lifted from another browser, does not match the cookie and is refused (CSRF).
 * Kinds: `sign-in` (the validated authorization request), `select-patient` (also the signed-in user),
 * `federation` (the upstream PKCE verifier, state and nonce while the user is at the provider).
 */
export type StateKind = 'sign-in' | 'select-patient' | 'federation';

const LIFETIME = '10m';
const AUDIENCE = 'tessera:sign-in';
export const CSRF_COOKIE = 'tessera_signin';

export const newCsrfSecret = (): string => randomBytes(32).toString('base64url');
const csrfHash = (secret: string): string => createHash('sha256').update(secret).digest('base64url');

export class SignInStates {
  constructor(private readonly key: SigningKey) {}

  seal(kind: StateKind, data: Record<string, unknown>, csrfSecret: string): Promise<string> {
    return new SignJWT({ kind, data, csrf: csrfHash(csrfSecret) })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.key.kid, typ: 'sign-in-state+jwt' })
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(LIFETIME)
      .sign(this.key.privateKey);
  }

  /** The data sealed, or undefined when the token is forged, expired, of another kind, or not this browser's. */
  async open<T>(kind: StateKind, token: string | undefined, csrfSecret: string | undefined): Promise<T | undefined> {
    if (!token || !csrfSecret) return undefined;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key.publicKey, { audience: AUDIENCE, algorithms: [SIGNING_ALG], typ: 'sign-in-state+jwt' }));
    } catch {
      return undefined;
    }
    if (payload.kind !== kind || payload.csrf !== csrfHash(csrfSecret)) return undefined;
    return payload.data as T;
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined; // not one of ours (a malformed %-escape): as if absent
      }
    }
  }
  return undefined;
}

export function cookie(name: string, value: string, options: { path: string; secure: boolean; maxAgeSeconds: number; sameSite?: 'Lax' | 'Strict' }): string {
  return `${name}=${encodeURIComponent(value)}; Path=${options.path}; Max-Age=${options.maxAgeSeconds}; HttpOnly; SameSite=${options.sameSite ?? 'Lax'}${options.secure ? '; Secure' : ''}`;
}
