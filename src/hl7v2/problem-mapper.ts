import type { Condition } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept, date } from './datatypes.js';
import { MappingError, type MappingContext } from './mapping-context.js';

const CLINICAL = 'http://terminology.hl7.org/CodeSystem/condition-clinical';
const VERIFICATION = 'http://terminology.hl7.org/CodeSystem/condition-ver-status';
/** PRB-14 problem life cycle status (user-defined table 0287; senders write words): FHIR clinical status. */
const LIFE_CYCLE: Record<string, string> = { ACTIVE: 'active', A: 'active', INACTIVE: 'inactive', I: 'inactive', RESOLVED: 'resolved', R: 'resolved', REMISSION: 'remission', RECURRENCE: 'recurrence', RELAPSE: 'relapse' };

/**
 * PPR^PC1/PC2/PC3 (problem add, update, delete): each PRB segment to a Condition on the problem list,
 * keyed by the problem instance id (PRB-4, else the problem code) so that an update or a delete reaches
 * the problem the add created. A delete (PRB-1 DE, or event PC3) marks it entered-in-error rather than
 * erasing it: another participant may have seen it, and the record keeps what was said and withdrawn.
 */
export function addProblems(ctx: MappingContext, event: string): number {
  let mapped = 0;
  for (const prb of ctx.message.segments('PRB')) {
    const code = codeableConcept(prb, 3);
    if (!code) {
      ctx.warn(`PRB ${mapped + 1}: no problem identifier (PRB-3): left out`);
      continue;
    }
    const key = prb.value(4) || code.coding?.[0]?.code || '';
    const withdrawn = prb.value(1).toUpperCase() === 'DE' || event === 'PC3';
    // Life cycle status is PRB-14; some senders (the public v2.3.1 samples) put it in PRB-13, the confirmation status.
    const status = (prb.value(14) || (LIFE_CYCLE[prb.value(13).toUpperCase()] ? prb.value(13) : '')).toUpperCase();
    const condition: Condition = {
      resourceType: 'Condition',
      identifier: [{ system: ctx.system('problem'), value: key }],
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'problem-list-item' }] }],
      code,
      subject: ctx.patient as NonNullable<typeof ctx.patient>,
      verificationStatus: { coding: [{ system: VERIFICATION, code: withdrawn ? 'entered-in-error' : 'confirmed' }] },
    };
    // FHIR: no clinical status on a problem entered in error; one on every other problem-list item.
    if (!withdrawn) {
      condition.clinicalStatus = { coding: [{ system: CLINICAL, code: LIFE_CYCLE[status] ?? 'active' }] };
      if (status && !LIFE_CYCLE[status]) ctx.warn(`PRB-14 life cycle status "${status}" is not known: taken as active`);
    }
    const onset = date(prb.value(16)) ?? ctx.dateTime(prb.value(16));
    if (onset) condition.onsetDateTime = onset;
    const recorded = ctx.dateTime(prb.value(7));
    if (recorded) condition.recordedDate = recorded;
    const resolved = ctx.dateTime(prb.value(9));
    if (resolved && !withdrawn) {
      condition.abatementDateTime = resolved;
      if (condition.clinicalStatus?.coding?.[0]?.code === 'active') condition.clinicalStatus = { coding: [{ system: CLINICAL, code: 'resolved' }] };
    }
    const notes = ctx.message.segments('NTE').map((n) => n.text(3)).filter(Boolean);
    if (notes.length) condition.note = notes.map((text) => ({ text }));
    ctx.tx.upsert(condition, identifierQuery(ctx.system('problem'), key));
    mapped++;
  }
  if (!mapped) {
    throw new MappingError('the PPR message has no PRB segment that could be mapped', 'PRB', '100');
  }
  return mapped;
}
