import type { SqlExecutor } from '../store/database.js';
import type { Random } from '../synthetic/random.js';
import type { PersonFeatures } from './features.js';

const ID_PAGE = 5_000;
const FEATURE_PAGE = 500;

/**
 * A uniform random sample of `size` source records' features, each with the identity it belongs to (reservoir sampling over the ids, so
 * the whole index is never held in memory and a seeded `random` gives the same sample every time).
 */
export async function sampleSources(sql: SqlExecutor, size: number, random: Random): Promise<{ enterpriseId: string; features: PersonFeatures }[]> {
  const reservoir: string[] = [];
  let seen = 0;
  let after = '';
  for (;;) {
    const rows = await sql.query<{ patient_id: string }>('SELECT patient_id FROM mpi_source WHERE patient_id > ? ORDER BY patient_id LIMIT ?', [after, ID_PAGE]);
    if (!rows.length) {
      break;
    }
    for (const { patient_id } of rows) {
      seen++;
      if (reservoir.length < size) {
        reservoir.push(patient_id);
      } else {
        const slot = Math.floor(random.next() * seen);
        if (slot < size) reservoir[slot] = patient_id;
      }
    }
    after = rows[rows.length - 1].patient_id;
  }
  const sources: { enterpriseId: string; features: PersonFeatures }[] = [];
  for (let i = 0; i < reservoir.length; i += FEATURE_PAGE) {
    const ids = reservoir.slice(i, i + FEATURE_PAGE);
    const rows = await sql.query<{ enterprise_id: string; features: string }>(`SELECT enterprise_id, features FROM mpi_source WHERE patient_id IN (${ids.map(() => '?').join(', ')})`, ids);
    for (const row of rows) sources.push({ enterpriseId: row.enterprise_id, features: JSON.parse(row.features) as PersonFeatures });
  }
  return sources;
}
