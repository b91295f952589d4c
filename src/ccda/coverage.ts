import type { Coverage } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, period } from './cda-values.js';
import { related, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
const POLICY_ACTIVITY = `${T}.4.61`;
const PAYER_PERFORMER = `${T}.4.87`;
/** HL7 RoleCode of the covered party to FHIR subscriber-relationship. */
const RELATIONSHIP: Record<string, string> = { SELF: 'self', SPS: 'spouse', SPOUSE: 'spouse', HUSB: 'spouse', WIFE: 'spouse', DOMPART: 'common', CHILD: 'child', SON: 'child', DAU: 'child', CHLDADOPT: 'child', PRN: 'parent', MTH: 'parent', FTH: 'parent', INJ: 'injured' };

/**
 * Payers (Insurance Providers) section: each Policy Activity of a Coverage Activity becomes a Coverage of
 * the patient: the payer (by name: the document does not identify it as a registered organisation), the
 * kind of coverage (code), the member id and relationship of the covered party, its period, and the
 * order of the policies.
 */
export const coverageSection: SectionMapper = {
  kind: 'coverage',
  templates: [`${T}.2.18`],
  loincCodes: ['48768-6'],
  mapEntry({ ctx, statement, narrative, section }: EntryInput) {
    const policies = statement.hasTemplate(POLICY_ACTIVITY) ? [statement] : related(statement, POLICY_ACTIVITY);
    if (!policies.length) throw new EntryMappingError('a Coverage Activity without a Policy Activity');
    for (const policy of policies) {
      const payer = payerName(policy);
      if (!payer) throw new EntryMappingError('a Policy Activity that names no payer');
      const coveredParty = policy.elements('participant').find((p) => p.attr('typeCode') === 'COV');
      const covered = coveredParty?.first('participantRole');
      const memberId = covered?.elements('id').find((i) => i.attr('extension'))?.attr('extension');
      const relationship = RELATIONSHIP[covered?.first('code')?.attr('code')?.toUpperCase() ?? ''];
      const when = period(coveredParty?.first('time'));
      const order = Number(sequenceOf(statement, policy));
      const ids = identifiers(policy);
      const type = concept(policy.first('code'), narrative);
      const coverage: Coverage = {
        resourceType: 'Coverage',
        status: 'active',
        beneficiary: { reference: ctx.patient.reference as string },
        payor: [{ display: payer }],
        ...(ids.length ? { identifier: ids } : {}),
        ...(type ? { type } : {}),
        ...(memberId ? { subscriberId: memberId } : {}),
        ...(relationship ? { relationship: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscriber-relationship', code: relationship }] } } : {}),
        ...(when ? { period: when } : {}),
        ...(Number.isInteger(order) && order > 0 ? { order } : {}),
      };
      ctx.add(section, coverage, ids);
    }
  },
};

function payerName(policy: XmlElement): string | undefined {
  const performer = policy.elements('performer').find((p) => p.hasTemplate(PAYER_PERFORMER)) ?? policy.elements('performer').find((p) => p.first('assignedEntity/representedOrganization/name'));
  return performer?.first('assignedEntity/representedOrganization/name')?.text()?.trim() || undefined;
}

/** The policy's sequenceNumber in its Coverage Activity (1 = primary). */
function sequenceOf(coverage: XmlElement, policy: XmlElement): string | undefined {
  const relationship = coverage.elements('entryRelationship').find((r) => r.elements().includes(policy));
  return relationship?.first('sequenceNumber')?.attr('value');
}
