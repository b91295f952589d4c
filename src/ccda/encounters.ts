import type { Coding, Encounter } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { codeSystemUri, concept, identifiers, period } from './cda-values.js';
import { related, type EntryInput, type SectionMapper } from './section-mapper.js';

const T = '2.16.840.1.113883.10.20.22';
const ACT_CODE = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const INDICATION = `${T}.4.19`;
const ENCOUNTER_DIAGNOSIS = `${T}.4.80`;

/**
 * Encounters section: each Encounter Activity becomes an Encounter: its type (CPT or SNOMED code), the
 * class (an ActCode translation, else ambulatory), the period, the location's name, and the reasons
 * (indications and encounter diagnoses). FHIR requires a status: `finished` once the period has ended
 * or the activity is completed, else `unknown`.
 */
export const encounterSection: SectionMapper = {
  kind: 'encounters',
  templates: [`${T}.2.22.1`, `${T}.2.22`],
  loincCodes: ['46240-8'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    if (statement.name !== 'encounter') {
      throw new EntryMappingError(`a ${statement.name} where an Encounter Activity belongs`);
    }
    const code = statement.first('code');
    const type = concept(code, narrative);
    const when = period(statement.first('effectiveTime'));
    const ids = identifiers(statement);
    const encounter: Encounter = {
      resourceType: 'Encounter',
      status: when?.end || statement.first('statusCode')?.attr('code') === 'completed' ? 'finished' : 'unknown',
      class: encounterClass(code?.elements('translation') ?? []) ?? { system: ACT_CODE, code: 'AMB', display: 'ambulatory' },
      subject: { reference: ctx.patient.reference as string },
      ...(ids.length ? { identifier: ids } : {}),
      ...(type ? { type: [type] } : {}),
      ...(when ? { period: when } : {}),
    };
    const reasons = [
      ...related(statement, INDICATION).map((i) => concept(i.first('value'), narrative)),
      ...related(statement, ENCOUNTER_DIAGNOSIS).flatMap((d) => related(d).map((p) => concept(p.first('value'), narrative))),
    ].filter((r) => !!r);
    if (reasons.length) encounter.reasonCode = reasons;
    const place = statement.first('participant/participantRole/playingEntity/name')?.text();
    if (place) encounter.location = [{ location: { display: place } }];
    if (!type && !when) {
      throw new EntryMappingError('an Encounter Activity with neither a type nor a date');
    }
    ctx.add(section, encounter, ids);
  },
};

function encounterClass(translations: { attr(name: string): string | undefined }[]): Coding | undefined {
  const t = translations.find((x) => x.attr('codeSystem') && codeSystemUri(x.attr('codeSystem') as string) === ACT_CODE && x.attr('code'));
  return t && { system: ACT_CODE, code: t.attr('code') as string, ...(t.attr('displayName') ? { display: t.attr('displayName') } : {}) };
}
