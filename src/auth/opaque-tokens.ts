import { createHash, randomBytes } from 'node:crypto';

/**
 * Authorization codes and refresh tokens are random 256-bit strings stored only as their SHA-256: a
 * stolen table does not yield usable tokens, and (unlike passwords) their entropy makes a slow hash pointless.
 */
export const newOpaqueToken = (): string => randomBytes(32).toString('base64url');
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');
