import { badRequest } from '../fhir/outcome.js';
import { SENSITIVITY_DISPLAY } from '../labels/sensitivity-value-sets.js';
import type { SqlExecutor } from '../store/database.js';

/**
 * Clearance: the kinds of sensitive data (security labels) a client or user may read without the
 * patient's consent, e.g. a public-health agency's client cleared for STD and HIV reporting, or an
 * operator's admin client cleared for all ('*'). 'V' clears very restricted data. Nobody has any unless
 * granted (`tessera clients clearance`); the demo's admin client is cleared for all.
 */
export const CLEARANCE_CODES = [...Object.keys(SENSITIVITY_DISPLAY), 'V', '*'];

/** Sets a holder's clearance (`client:{id}` or `user:{id}`); an empty list removes it. */
export async function setClearance(sql: SqlExecutor, holder: string, kinds: string[]): Promise<void> {
  for (const kind of kinds) {
    if (!CLEARANCE_CODES.includes(kind)) {
      throw badRequest(`Unknown clearance "${kind}": expected some of ${CLEARANCE_CODES.join(', ')}`);
    }
  }
  await sql.run('DELETE FROM access_clearance WHERE holder = ?', [holder]);
  if (kinds.length) {
    await sql.run('INSERT INTO access_clearance (holder, kinds, granted_at) VALUES (?, ?, ?)', [holder, kinds.join(','), Date.now()]);
  }
}
