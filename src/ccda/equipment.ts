import type { Device, DeviceUseStatement } from '@medplum/fhirtypes';
import { EntryMappingError } from './ccda-context.js';
import { concept, identifiers, spanOrPoint } from './cda-values.js';
import { procedureSection } from './procedures.js';
import { negated, statementOf, type EntryInput, type SectionMapper } from './section-mapper.js';
import type { XmlElement } from './xml-element.js';

const T = '2.16.840.1.113883.10.20.22';
const USE_STATUS: Record<string, DeviceUseStatement['status']> = { completed: 'completed', active: 'active', aborted: 'stopped', cancelled: 'stopped', new: 'intended', held: 'on-hold', suspended: 'on-hold', nullified: 'entered-in-error' };

/**
 * Medical Equipment section: a Non-Medicinal Supply Activity (a cane, a wheelchair, an implant supplied)
 * becomes the Device (its product instance: type and serial ids) and a DeviceUseStatement of the patient
 * (status, when); a Procedure Activity (an implant placed) becomes a Procedure; a Medical Equipment
 * Organizer's components are taken one by one.
 */
export const medicalEquipmentSection: SectionMapper = {
  kind: 'medical-equipment',
  templates: [`${T}.2.23`],
  loincCodes: ['46264-8'],
  mapEntry(input: EntryInput) {
    const { statement } = input;
    if (statement.name === 'organizer') {
      const components = statement.elements('component').map(statementOf).filter((s): s is XmlElement => !!s);
      if (!components.length) throw new EntryMappingError('a Medical Equipment Organizer without supplies or procedures');
      for (const component of components) mapEquipment({ ...input, statement: component });
      return;
    }
    mapEquipment(input);
  },
};

function mapEquipment(input: EntryInput): void {
  const { ctx, statement, narrative, section } = input;
  if (statement.name === 'procedure') {
    procedureSection.mapEntry(input);
    return;
  }
  if (statement.name !== 'supply') {
    throw new EntryMappingError(`a ${statement.name} where a Non-Medicinal Supply Activity or Procedure Activity belongs`);
  }
  if (negated(statement)) {
    // "No device supplied": R4's DeviceUseStatement has no status for that; the narrative says it.
    throw new EntryMappingError('a negated supply (no device)');
  }
  const product = statement.first('participant/participantRole');
  const type = concept(product?.first('playingDevice/code'), narrative);
  if (!type) throw new EntryMappingError('a supply without a device code (playingDevice)');
  const patient = ctx.patient.reference as string;
  const deviceIds = product ? identifiers(product) : [];
  const device = ctx.add<Device>(section, { resourceType: 'Device', status: 'active', type, patient: { reference: patient }, ...(deviceIds.length ? { identifier: deviceIds } : {}) }, deviceIds);
  const ids = identifiers(statement);
  const use: DeviceUseStatement = {
    resourceType: 'DeviceUseStatement',
    status: USE_STATUS[statement.first('statusCode')?.attr('code') ?? ''] ?? 'completed',
    subject: { reference: patient },
    device,
    ...(ids.length ? { identifier: ids } : {}),
  };
  const when = spanOrPoint(statement.first('effectiveTime'));
  if (when && 'period' in when) use.timingPeriod = when.period;
  else if (when) use.timingDateTime = when.dateTime;
  ctx.add(section, use, ids);
}
