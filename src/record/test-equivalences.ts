import type { SqlExecutor } from '../store/database.js';
import { LOINC, SNOMED } from './code-maps.js';

/**
 * Tests that answer the same clinical question, and how long a result stays good enough that ordering
 * the test again is likely a duplicate. Data, edited by the community (`tessera record equivalences`,
 * stored in the `setting` table); these are the defaults shipped.
 */
export interface TestEquivalence {
  id: string;
  name: string;
  lookbackDays: number;
  codes: { system: string; code: string; display?: string }[];
}

const CPT = 'http://www.ama-assn.org/go/cpt';

export const DEFAULT_TEST_EQUIVALENCES: readonly TestEquivalence[] = [
  {
    id: 'hba1c',
    name: 'Hemoglobin A1c',
    lookbackDays: 90,
    codes: [
      { system: LOINC, code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' },
      { system: LOINC, code: '17856-6', display: 'Hemoglobin A1c/Hemoglobin.total in Blood by HPLC' },
      { system: LOINC, code: '4549-2', display: 'Hemoglobin A1c/Hemoglobin.total in Blood by Electrophoresis' },
      { system: CPT, code: '83036' },
    ],
  },
  {
    id: 'lipid-panel',
    name: 'Lipid panel',
    lookbackDays: 365,
    codes: [
      { system: LOINC, code: '57698-3', display: 'Lipid panel with direct LDL' },
      { system: LOINC, code: '24331-1', display: 'Lipid 1996 panel' },
      { system: LOINC, code: '2093-3', display: 'Cholesterol [Mass/volume] in Serum or Plasma' },
      { system: LOINC, code: '18262-6', display: 'LDL cholesterol (direct)' },
      { system: LOINC, code: '2085-9', display: 'HDL cholesterol' },
      { system: LOINC, code: '2571-8', display: 'Triglycerides' },
      { system: CPT, code: '80061' },
    ],
  },
  {
    id: 'head-ct',
    name: 'CT of the head',
    lookbackDays: 30,
    codes: [
      { system: LOINC, code: '24725-4', display: 'CT Head' },
      { system: LOINC, code: '30799-1', display: 'CT Head WO contrast' },
      { system: SNOMED, code: '303653007', display: 'CT of head' },
      { system: CPT, code: '70450' },
    ],
  },
];

const SETTING_KEY = 'record.test-equivalences';

/** The equivalences in force: the community's edited list, else the defaults. */
export async function testEquivalences(db: SqlExecutor): Promise<TestEquivalence[]> {
  const rows = await db.query<{ value: string }>('SELECT value FROM setting WHERE key = ?', [SETTING_KEY]);
  return rows[0] ? (JSON.parse(rows[0].value) as TestEquivalence[]) : [...DEFAULT_TEST_EQUIVALENCES];
}

/** Checks and stores an edited list; an entry that is not well formed is refused with its position and reason. */
export async function setTestEquivalences(db: SqlExecutor, list: unknown): Promise<TestEquivalence[]> {
  if (!Array.isArray(list)) throw new Error('The equivalences must be a JSON array');
  const seen = new Set<string>();
  list.forEach((e: Partial<TestEquivalence>, i) => {
    const where = `entry ${i + 1}${e?.id ? ` (${e.id})` : ''}`;
    if (!e || typeof e.id !== 'string' || !e.id) throw new Error(`${where}: an id is required`);
    if (seen.has(e.id)) throw new Error(`${where}: the id is used twice`);
    seen.add(e.id);
    if (typeof e.name !== 'string' || !e.name) throw new Error(`${where}: a name is required`);
    if (typeof e.lookbackDays !== 'number' || !(e.lookbackDays > 0)) throw new Error(`${where}: lookbackDays must be a positive number`);
    if (!Array.isArray(e.codes) || !e.codes.length || e.codes.some((c) => typeof c?.system !== 'string' || typeof c?.code !== 'string')) {
      throw new Error(`${where}: codes must be a non-empty list of {system, code}`);
    }
  });
  await db.run('DELETE FROM setting WHERE key = ?', [SETTING_KEY]);
  await db.run('INSERT INTO setting (key, value) VALUES (?, ?)', [SETTING_KEY, JSON.stringify(list)]);
  return list as TestEquivalence[];
}
