import { RXNORM } from './code-maps.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * A medication's active ingredients, read from the RxNorm normalized name its sources send with the code
 * (the SCD/SBD name: "[quantity] ingredient strength unit[ / ingredient strength unit ...] dose form
 * [brand]", e.g. "Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", "24 HR Metformin hydrochloride
 * 500 MG Extended Release Oral Tablet"). No RxNorm relationship tables are shipped, so this is the
 * ingredient data at hand: every Synthea medication and every C-CDA with a display carries it. Salts are
 * dropped ("metformin hydrochloride" is metformin: the ingredient, not the precise ingredient), so two
 * strengths or forms of one ingredient meet. A coding without an RxNorm name gives no ingredient.
 */
export function ingredientsOf(cc: any): string[] {
  const names = (cc?.coding ?? []).filter((c: any) => c?.system === RXNORM && typeof c.display === 'string').map((c: any) => c.display as string);
  if (!names.length && typeof cc?.text === 'string' && (cc.coding ?? []).some((c: any) => c?.system === RXNORM)) names.push(cc.text);
  const out = new Set<string>();
  for (const name of names) for (const i of ingredientsOfName(name)) out.add(i);
  return [...out];
}

/** Words that name a salt or ester of the ingredient, not another ingredient. */
const SALTS = new Set(['hydrochloride', 'hcl', 'sodium', 'potassium', 'calcium', 'magnesium', 'maleate', 'besylate', 'succinate', 'tartrate', 'sulfate', 'citrate', 'mesylate', 'acetate', 'hyclate', 'fumarate', 'bromide', 'phosphate', 'monohydrate', 'dihydrate', 'trihydrate', 'anhydrous', 'hydrobromide', 'bitartrate', 'propionate', 'furoate', 'valerate', 'dipropionate', 'xinafoate']);

export function ingredientsOfName(name: string): string[] {
  const withoutBrand = name.replace(/\s*\[[^\]]*\]\s*$/, '');
  const out: string[] = [];
  for (const part of withoutBrand.split(' / ')) {
    // A leading quantity ("24 HR", "1 ML", "120 ACTUAT") precedes the ingredient in RxNorm names.
    const text = part.trim().replace(/^\d+(\.\d+)?\s+(HR|ML|ACTUAT|MG|UNT)\s+/i, '');
    const m = /^(.*?)\s+\d/.exec(text);
    if (!m) continue;
    const words = m[1].toLowerCase().split(/\s+/).filter((w) => w && !SALTS.has(w));
    if (words.length) out.push(words.join(' '));
  }
  return out;
}
