import { exportJWK, generateKeyPair, importJWK, type JWK, type CryptoKey } from 'jose';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDirectory, PRIVATE_FILE_MODE, restrictExistingFiles } from '../store/private-files.js';

export interface SigningKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  publicJwk: JWK;
  kid: string;
}

const ALG = 'ES256';

/** The server's token-signing key: generated on first start and kept (mode 0600) in the data directory. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const dir = join(dataDir, 'keys');
  const file = join(dir, 'signing-key.jwk.json');
  let privateJwk: JWK;
  ensurePrivateDirectory(dir);
  if (existsSync(file)) {
    restrictExistingFiles([file]);
    privateJwk = JSON.parse(readFileSync(file, 'utf8'));
  } else {
    const pair = await generateKeyPair(ALG, { extractable: true });
    privateJwk = { ...(await exportJWK(pair.privateKey)), alg: ALG, kid: `tessera-${Date.now().toString(36)}` };
    writeFileSync(file, JSON.stringify(privateJwk), { mode: PRIVATE_FILE_MODE });
  }
  const { d: _private, ...publicJwk } = privateJwk;
  return {
    privateKey: (await importJWK(privateJwk, ALG)) as CryptoKey,
    publicKey: (await importJWK(publicJwk, ALG)) as CryptoKey,
    publicJwk,
    kid: privateJwk.kid as string,
  };
}

export const SIGNING_ALG = ALG;
