import type { IndexRows } from '../search/index-values.js';
import { isSensitivityKind } from './labeler.js';
import { ACT_CODE, CONFIDENTIALITY, type SensitivityKind } from './sensitivity-value-sets.js';

/**
 * The security labels the access policy withholds by, as bits of the `labels` column of a resource's
 * current row: a row without any (most rows) is told apart by reading one column instead of looking
 * through its index rows, in every search, read and `suppressed` check of a caller without clearance.
 * The index rows (`_security` tokens) stay the truth the conditions fall back to; the bits only say where
 * to look. Stored values: a bit, once given, keeps its meaning (a new kind takes the next one).
 */
const BITS: Readonly<Record<string, number>> = {
  [`${ACT_CODE}|ETH`]: 1,
  [`${ACT_CODE}|PSY`]: 2,
  [`${ACT_CODE}|HIV`]: 4,
  [`${ACT_CODE}|STD`]: 8,
  [`${ACT_CODE}|SEX`]: 16,
  [`${ACT_CODE}|GDIS`]: 32,
  [`${ACT_CODE}|SDV`]: 64,
  [`${CONFIDENTIALITY}|V`]: 128,
};

/** Each (system, code) with a bit, for migrations that compute the column from the index. */
export const LABEL_BITS: readonly { system: string; code: string; bit: number }[] = Object.entries(BITS).map(([key, bit]) => {
  const bar = key.lastIndexOf('|');
  return { system: key.slice(0, bar), code: key.slice(bar + 1), bit };
});

/** The bits of the labels among a resource's index rows (its `_security` tokens). */
export function labelBitsOf(rows: IndexRows): number {
  let bits = 0;
  for (const [code, system, value] of rows.token) {
    if (code === '_security') bits |= BITS[`${system}|${value}`] ?? 0;
  }
  return bits;
}

/** The mask of sensitivity kinds (and V) a caller is not cleared for. */
export function labelMask(kinds: readonly SensitivityKind[], veryRestricted: boolean): number {
  return kinds.reduce((mask, kind) => mask | (BITS[`${ACT_CODE}|${kind}`] ?? 0), veryRestricted ? (BITS[`${CONFIDENTIALITY}|V`] as number) : 0);
}

/** The sensitivity kinds whose bits are set in a `labels` column value (V, a confidentiality, is not one). */
export function sensitivityKindsOf(bits: number): SensitivityKind[] {
  return LABEL_BITS.filter((b) => b.system === ACT_CODE && bits & b.bit).map((b) => b.code).filter(isSensitivityKind);
}
