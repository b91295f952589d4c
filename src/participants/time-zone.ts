import { badRequest } from '../fhir/outcome.js';
import { validTimeZone } from '../hl7v2/sender-time-zone.js';
import type { SqlExecutor } from '../store/database.js';

/**
 * A participant's time zone (IANA name): the zone of the HL7 v2 times it sends without a UTC offset
 * (src/hl7v2/sender-time-zone.ts). Kept in the `setting` table, one key per participant.
 */
const key = (participantId: string) => `participant.time-zone.${participantId}`;

export async function participantTimeZone(db: SqlExecutor, participantId: string): Promise<string | undefined> {
  const rows = await db.query<{ value: string }>('SELECT value FROM setting WHERE key = ?', [key(participantId)]);
  return rows[0]?.value;
}

/** Sets (or with an empty zone clears) a participant's time zone; an unknown zone name is refused. */
export async function setParticipantTimeZone(db: SqlExecutor, participantId: string, zone: string): Promise<void> {
  if (zone && !validTimeZone(zone)) throw badRequest(`"${zone}" is not an IANA time zone (e.g. America/New_York, Europe/Berlin)`);
  await db.run('DELETE FROM setting WHERE key = ?', [key(participantId)]);
  if (zone) await db.run('INSERT INTO setting (key, value) VALUES (?, ?)', [key(participantId), zone]);
}
