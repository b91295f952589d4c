import type { Goal, ServiceRequest } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, dateTime, identifiers, instant, quantity } from './cda-values.js';
import { medicationSection } from './medications.js';
import { procedureSection } from './procedures.js';
import { conditionFrom, HEALTH_CONCERN } from './problems.js';
import { entryObservations, negated, related, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';

/**
 * Goals section: each Goal Observation becomes a Goal: what is aimed at (the code, and the target value
 * when there is one: "pulse oximetry at least 92 %"), its start date, active while the observation is.
 */
export const goalSection: SectionMapper = {
  kind: 'goals',
  templates: [`${T}.2.60`],
  loincCodes: ['61146-7'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    const description = concept(statement.first('code'), narrative);
    if (!description) throw new EntryMappingError('a Goal Observation without a code (what the goal is)');
    const value = statement.first('value');
    const [low, high] = [quantity(value?.first('low')), quantity(value?.first('high'))];
    const exact = quantity(value);
    const ids = identifiers(statement);
    const start = instant(statement.first('effectiveTime'));
    const goal: Goal = {
      resourceType: 'Goal',
      lifecycleStatus: statement.first('statusCode')?.attr('code') === 'completed' ? 'completed' : statement.first('statusCode')?.attr('code') === 'cancelled' ? 'cancelled' : 'active',
      description,
      subject: { reference: ctx.patient.reference as string },
      ...(ids.length ? { identifier: ids } : {}),
      ...(start ? { startDate: start.slice(0, 10) } : {}),
    };
    if (low || high || exact) {
      goal.target = [{ measure: description, ...(low || high ? { detailRange: { ...(low ? { low } : {}), ...(high ? { high } : {}) } } : { detailQuantity: exact }) }];
    }
    ctx.add(section, goal, ids);
  },
};

/** Health Concerns section: each concern's observations become Conditions of category health-concern. */
export const healthConcernSection: SectionMapper = {
  kind: 'health-concerns',
  templates: [`${T}.2.58`],
  loincCodes: ['75310-3'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    for (const observation of entryObservations(statement, 'an observation of the concern', (o) => !!o.first('value'))) {
      ctx.add(section, conditionFrom(observation, statement, narrative, ctx.patient.reference as string, HEALTH_CONCERN), identifiers(observation));
    }
  },
};

/**
 * Plan of Treatment section: planned medications become MedicationRequests (intent plan, through the
 * medication mapper); planned observations, procedures, acts, encounters and supplies become
 * ServiceRequests (intent plan), with the planned date.
 */
export const planOfTreatmentSection: SectionMapper = {
  kind: 'plan-of-treatment',
  // The Planned Procedure section of procedure notes holds the same planned procedures.
  templates: [`${T}.2.10`, `${T}.2.30`],
  loincCodes: ['18776-5', '59772-4'],
  mapEntry(input: EntryInput) {
    const { ctx, statement, narrative, section } = input;
    if (statement.name === 'substanceAdministration') {
      medicationSection.mapEntry(input);
      return;
    }
    // A Planned Supply names what is to be supplied by its product (a medication) or device, not by a code of its own.
    const code =
      concept(statement.first('code'), narrative) ??
      concept(statement.first('product/manufacturedProduct/manufacturedMaterial/code'), narrative) ??
      concept(statement.first('participant/participantRole/playingDevice/code'), narrative);
    if (!code) throw new EntryMappingError(`a planned ${statement.name} without a code (what is planned)`);
    const ids = identifiers(statement);
    const when = instant(statement.first('effectiveTime'));
    const request: ServiceRequest = {
      resourceType: 'ServiceRequest',
      status: negated(statement) ? 'revoked' : statement.first('statusCode')?.attr('code') === 'completed' ? 'completed' : 'active',
      intent: 'plan',
      code,
      subject: { reference: ctx.patient.reference as string },
      ...(ids.length ? { identifier: ids } : {}),
      ...(when ? { occurrenceDateTime: when } : {}),
    };
    ctx.add(section, request, ids);
  },
};

const INDICATION = `${T}.4.19`;
/** HL7 ActPriority to FHIR request priority (the codes with a clear counterpart). */
const PRIORITY: Record<string, ServiceRequest['priority']> = { R: 'routine', UR: 'urgent', A: 'asap', S: 'stat', EM: 'stat' };
const REQUEST_STATUS: Record<string, ServiceRequest['status']> = { active: 'active', completed: 'completed', cancelled: 'revoked', aborted: 'revoked', new: 'draft', held: 'on-hold', suspended: 'on-hold', nullified: 'entered-in-error' };

/**
 * Reason for Referral section: each Patient Referral Act becomes a ServiceRequest (intent order) for the
 * referral it names: its priority and date, the author's time as when it was written, Indications as
 * reasons, and other observations of it (the kind of care asked for) as order details.
 */
export const referralSection: SectionMapper = {
  kind: 'referral',
  templates: ['1.3.6.1.4.1.19376.1.5.3.1.3.1'],
  loincCodes: ['42349-1'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    if (statement.name !== 'act') throw new EntryMappingError(`a ${statement.name} where a Patient Referral Act belongs`);
    const code = concept(statement.first('code'), narrative);
    if (!code) throw new EntryMappingError('a Patient Referral Act without a code (what is asked for)');
    const ids = identifiers(statement);
    const observations = related(statement).filter((o) => o.name === 'observation');
    const values = (list: XmlElement[]) => list.map((o) => concept(o.first('value'), narrative)).filter((c) => !!c);
    const reasons = values(observations.filter((o) => o.hasTemplate(INDICATION)));
    const details = values(observations.filter((o) => !o.hasTemplate(INDICATION)));
    const when = instant(statement.first('effectiveTime'));
    const authored = dateTime(statement.first('author/time')?.attr('value'));
    const priority = PRIORITY[statement.first('priorityCode')?.attr('code') ?? ''];
    const request: ServiceRequest = {
      resourceType: 'ServiceRequest',
      status: negated(statement) ? 'revoked' : (REQUEST_STATUS[statement.first('statusCode')?.attr('code') ?? ''] ?? 'active'),
      intent: 'order',
      code,
      subject: { reference: ctx.patient.reference as string },
      ...(ids.length ? { identifier: ids } : {}),
      ...(priority ? { priority } : {}),
      ...(when ? { occurrenceDateTime: when } : {}),
      ...(authored ? { authoredOn: authored } : {}),
      ...(reasons.length ? { reasonCode: reasons } : {}),
      ...(details.length ? { orderDetail: details } : {}),
    };
    ctx.add(section, request, ids);
  },
};

const ENTRY_REFERENCE = `${T}.4.122`;
const GOAL_OBSERVATION = `${T}.4.121`;
/** Moods of something not yet done: intended, requested, promised, proposed, appointed. */
const INTENDED = new Set(['INT', 'RQO', 'PRMS', 'PRP', 'ARQ', 'APT']);

/**
 * Interventions section of care plans: an Intervention Act (done) or Planned Intervention Act (intended)
 * wraps what the intervention is; each part is converted as the section it would stand in: intended ones
 * as in the Plan of Treatment (ServiceRequest, MedicationRequest; intent plan), done ones as Procedures or
 * MedicationStatements. Entry References (to a goal or another entry) and goals restated there are not
 * new facts and are skipped; one part that cannot be read is a warning, not the whole intervention lost.
 */
export const interventionSection: SectionMapper = {
  kind: 'interventions',
  templates: ['2.16.840.1.113883.10.20.21.2.3'],
  loincCodes: ['62387-6'],
  mapEntry(input: EntryInput) {
    const { ctx, statement, section } = input;
    const parts = related(statement).filter((s) => !s.hasTemplate(ENTRY_REFERENCE, GOAL_OBSERVATION));
    if (!parts.length) throw new EntryMappingError('an intervention act holding no planned or performed activity');
    for (const part of parts) {
      try {
        mapActivity({ ...input, statement: part });
      } catch (err) {
        if (!(err instanceof EntryMappingError)) throw err;
        ctx.warn(`${section}: a part of an intervention was not converted (${err.message}); it stays in the document's narrative`);
      }
    }
  },
};

function mapActivity(input: EntryInput): void {
  if (INTENDED.has(input.statement.attr('moodCode') ?? 'EVN')) planOfTreatmentSection.mapEntry(input);
  else if (input.statement.name === 'substanceAdministration') medicationSection.mapEntry(input);
  else procedureSection.mapEntry(input);
}
