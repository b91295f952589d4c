import type { Goal, ServiceRequest } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, instant, quantity } from './cda-values.js';
import { medicationSection } from './medications.js';
import { conditionFrom, HEALTH_CONCERN } from './problems.js';
import { entryObservations, negated, type EntryInput, type SectionMapper } from './section-mapper.js';

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
  templates: [`${T}.2.10`],
  loincCodes: ['18776-5'],
  mapEntry(input: EntryInput) {
    const { ctx, statement, narrative, section } = input;
    if (statement.name === 'substanceAdministration') {
      medicationSection.mapEntry(input);
      return;
    }
    const code = concept(statement.first('code'), narrative);
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
