import type { Procedure } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, spanOrPoint } from './cda-values.js';
import { medicationSection } from './medications.js';
import { negated, type EntryInput, type SectionMapper } from './section-mapper.js';

const T = '2.16.840.1.113883.10.20.22';
const STATUS: Record<string, Procedure['status']> = { completed: 'completed', active: 'in-progress', aborted: 'stopped', cancelled: 'not-done', new: 'preparation', held: 'on-hold', suspended: 'on-hold', nullified: 'entered-in-error' };

/**
 * Procedures section: Procedure Activity Procedure, Observation and Act entries all become Procedures
 * (what was done, when, where on the body); a negated one is `not-done`.
 */
export const procedureSection: SectionMapper = {
  kind: 'procedures',
  templates: [`${T}.2.7.1`, `${T}.2.7`],
  loincCodes: ['47519-4'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    if (!['procedure', 'observation', 'act'].includes(statement.name)) {
      throw new EntryMappingError(`a ${statement.name} where a Procedure Activity belongs`);
    }
    const code = concept(statement.first('code'), narrative);
    if (!code) {
      throw new EntryMappingError('a Procedure Activity without a code (what was done)');
    }
    const ids = identifiers(statement);
    const procedure: Procedure = {
      resourceType: 'Procedure',
      status: negated(statement) ? 'not-done' : (STATUS[statement.first('statusCode')?.attr('code') ?? ''] ?? 'completed'),
      code,
      subject: { reference: ctx.patient.reference as string },
      ...(ids.length ? { identifier: ids } : {}),
    };
    const when = spanOrPoint(statement.first('effectiveTime'));
    if (when && 'period' in when) procedure.performedPeriod = when.period;
    else if (when) procedure.performedDateTime = when.dateTime;
    const sites = statement.elements('targetSiteCode').map((s) => concept(s, narrative)).filter((s) => !!s);
    if (sites.length) procedure.bodySite = sites;
    ctx.add(section, procedure, ids);
  },
};

/**
 * Anesthesia section of procedure notes: the anesthesia given is a Procedure Activity (which becomes a
 * Procedure) and the agents are Medication Activities (which become medication statements, as in the
 * Medications section).
 */
export const anesthesiaSection: SectionMapper = {
  kind: 'anesthesia',
  templates: [`${T}.2.25`],
  loincCodes: ['59774-0'],
  mapEntry(input: EntryInput) {
    if (input.statement.name === 'substanceAdministration') medicationSection.mapEntry(input);
    else procedureSection.mapEntry(input);
  },
};
