import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * Password hashes: scrypt (memory-hard, built into Node, no dependency) with N = 2^15, r = 8, p = 3: 32 MiB
 * per hash, one of OWASP's equivalent minimum settings for scrypt (N = 2^17, p = 1 costs 128 MiB per
 * concurrent sign-in). 16-byte random salt, 32-byte key. The parameters are stored with the hash, so they
 * can be raised later without invalidating old hashes. Format: `scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`.
 */
const LOG_N = 15;
const R = 8;
const P = 3;
const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 12;

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

const options = (logN: number, r: number, p: number): ScryptOptions => ({ N: 2 ** logN, r, p, maxmem: 2 * 128 * r * 2 ** logN });

export function checkPasswordPolicy(password: string): void {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new Error(`A password needs at least ${MIN_PASSWORD_LENGTH} characters`);
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password, salt, KEY_LENGTH, options(LOG_N, R, P));
  return `scrypt$${LOG_N}$${R}$${P}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string | null): Promise<boolean> {
  // Without a stored hash (unknown user, federated-only user) the same work is done against a dummy,
  // so that response time does not tell which email addresses exist.
  const [scheme, logN, r, p, salt, hash] = (stored ?? DUMMY_HASH).split('$');
  if (scheme !== 'scrypt' || !salt || !hash) {
    return false;
  }
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, options(Number(logN), Number(r), Number(p)));
  return stored !== null && timingSafeEqual(actual, expected);
}

const DUMMY_HASH = `scrypt$${LOG_N}$${R}$${P}$${Buffer.alloc(16).toString('base64url')}$${Buffer.alloc(KEY_LENGTH).toString('base64url')}`;
