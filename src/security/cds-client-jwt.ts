import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { unauthorized } from '../fhir/outcome.js';
import type { SqlExecutor } from '../store/database.js';
import { findClient } from './clients.js';
import { parseScopes } from './scopes.js';
import type { AuthContext } from './token-service.js';

/**
 * CDS Hooks 2.0 "Trusting CDS Clients": the CDS client (an EHR) signs a short-lived JWT for each call
 * (iss: the client, sub: its client_id, aud: the service's URL, exp at most 5 minutes ahead, jti unique),
 * with a key of the JWKS the operator registered for it (`tessera clients create --jwks`). The call then
 * acts as that Tessera client: its scopes and participant bound what the service may read for it.
 */
export class CdsClientVerifier {
  private readonly usedIds = new Map<string, number>();
  /** Each client's key set, imported once per JWKS as registered (a replaced JWKS is imported anew). */
  private readonly keySets = new Map<string, { jwks: string; keys: ReturnType<typeof createLocalJWKSet> }>();

  constructor(private readonly db: SqlExecutor) {}

  private keySetOf(clientId: string, jwks: Parameters<typeof createLocalJWKSet>[0]): ReturnType<typeof createLocalJWKSet> {
    const registered = JSON.stringify(jwks);
    const known = this.keySets.get(clientId);
    if (known?.jwks === registered) return known.keys;
    const keys = createLocalJWKSet(jwks);
    this.keySets.set(clientId, { jwks: registered, keys });
    return keys;
  }

  async verify(authorization: string | undefined, audience: string): Promise<AuthContext> {
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw unauthorized('A CDS Hooks call needs a JWT signed by the CDS client (Authorization: Bearer)');
    let claimed: string;
    try {
      const claims = decodeJwt(token);
      claimed = String(claims.sub ?? claims.iss ?? '');
    } catch {
      throw unauthorized('The Authorization header does not carry a JWT');
    }
    const client = await findClient(this.db, claimed);
    if (!client || client.disabled || !client.jwks) throw unauthorized('Unknown CDS client, or no JWKS registered for it');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.keySetOf(client.id, client.jwks), { audience, maxTokenAge: '5m', algorithms: ['ES384', 'RS384', 'ES256', 'RS256'] }));
    } catch (err) {
      throw unauthorized(`The CDS client's JWT was rejected: ${(err as Error).message}`);
    }
    if (String(payload.iss ?? '') !== client.id && String(payload.sub ?? '') !== client.id) throw unauthorized('The JWT names another client');
    this.rejectReplay(String(payload.jti ?? ''), Number(payload.exp ?? 0));
    const rows = await this.db.query<{ organization_id: string }>('SELECT organization_id FROM participant WHERE active = 1 AND client_id = ?', [client.id]);
    return {
      clientId: client.id,
      scopes: parseScopes(client.scope),
      purposeOfUse: 'TREAT',
      ...(rows[0] ? { organization: `Organization/${rows[0].organization_id}` } : {}),
      ...(payload.jti ? { tokenId: String(payload.jti) } : {}),
    };
  }

  /** A JWT may be used once (jti), until it expires. */
  private rejectReplay(jti: string, exp: number): void {
    if (!jti) throw unauthorized('The CDS client JWT must carry a jti');
    const now = Date.now() / 1000;
    for (const [id, expiry] of this.usedIds) if (expiry < now) this.usedIds.delete(id);
    if (this.usedIds.has(jti)) throw unauthorized('The CDS client JWT has already been used (jti)');
    this.usedIds.set(jti, exp || now + 300);
  }
}
