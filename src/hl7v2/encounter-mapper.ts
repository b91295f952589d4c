import type { Condition, Encounter, EncounterDiagnosis, Patient, Reference } from '@medplum/fhirtypes';
import { identifierQuery } from '../bundle/transaction-builder.js';
import { codeableConcept, cx } from './datatypes.js';
import type { MappingContext } from './mapping-context.js';
import type { V2Segment } from './message-reader.js';

/** PV1-2 patient class (HL7 table 0004) to Encounter.class (v3 ActCode). */
const CLASS: Record<string, { code: string; display: string }> = {
  E: { code: 'EMER', display: 'emergency' },
  I: { code: 'IMP', display: 'inpatient encounter' },
  O: { code: 'AMB', display: 'ambulatory' },
  P: { code: 'PRENC', display: 'pre-admission' },
  R: { code: 'AMB', display: 'ambulatory' },
  B: { code: 'IMP', display: 'inpatient encounter' },
  C: { code: 'AMB', display: 'ambulatory' },
  U: { code: 'AMB', display: 'ambulatory' },
};

/** Trigger events to the Encounter status they leave it in. */
const STATUS_BY_EVENT: Record<string, Encounter['status']> = {
  A01: 'in-progress',
  A02: 'in-progress',
  A03: 'finished',
  A04: 'in-progress',
  A05: 'planned',
  A06: 'in-progress',
  A07: 'in-progress',
  A11: 'cancelled',
  A12: 'in-progress',
  A13: 'in-progress',
  A14: 'planned',
  A15: 'in-progress',
  A16: 'in-progress',
  A21: 'onleave',
  A22: 'in-progress',
  A25: 'in-progress',
  A26: 'in-progress',
  A27: 'cancelled',
  A38: 'cancelled',
};

/** DG1-6 diagnosis type (table 0052) to Encounter.diagnosis.use (diagnosis-role). */
const DIAGNOSIS_ROLE: Record<string, string> = { A: 'AD', W: 'AD', F: 'DD', P: 'pre-op' };

/**
 * PV1 (and PV2, DG1) to Encounter and its diagnoses (Condition, category encounter-diagnosis). The visit
 * number (PV1-19) keys the Encounter, so that the transfer, discharge and updates that follow an
 * admission change the same Encounter. Events that describe no visit (A28, A31: person information) or
 * a PV1 without a patient class map no Encounter.
 */
export function addEncounter(ctx: MappingContext, event: string): Reference<Encounter> | undefined {
  const pv1 = ctx.message.segment('PV1');
  const patientClass = pv1?.value(2).toUpperCase() ?? '';
  if (!pv1 || !patientClass || patientClass === 'N') {
    return undefined;
  }
  const klass = CLASS[patientClass];
  if (!klass) {
    ctx.warn(`PV1-2 patient class "${patientClass}" is not in HL7 table 0004: no Encounter mapped`);
    return undefined;
  }
  const evn = ctx.message.segment('EVN');
  const eventTime = ctx.dateTime(evn?.value(6) || evn?.value(2) || '') ?? undefined;
  const admitted = datetimeOf(ctx, pv1, 44, 'admit date/time');
  const discharged = datetimeOf(ctx, pv1, 45, 'discharge date/time');
  const status = STATUS_BY_EVENT[event] ?? (discharged ? 'finished' : 'in-progress');
  const encounter: Encounter = {
    resourceType: 'Encounter',
    status,
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', ...klass },
    subject: ctx.patient,
    serviceProvider: ctx.organization,
  };
  const visit = cx(pv1, 19);
  if (visit) {
    encounter.identifier = [{ use: 'official', system: ctx.system('visit'), value: visit.value }];
  }
  const start = admitted ?? (event === 'A01' || event === 'A04' ? eventTime : undefined);
  const end = discharged ?? (event === 'A03' ? eventTime : undefined);
  if (start || end) {
    encounter.period = { ...(start ? { start } : {}), ...(end ? { end } : {}) };
  }
  const locations = [];
  const prior = pointOfCare(pv1, 6);
  if (prior && event === 'A02') {
    locations.push({ location: { display: prior }, status: 'completed' as const });
  }
  const current = pointOfCare(pv1, 3);
  if (current) {
    locations.push({ location: { display: current }, status: status === 'finished' ? ('completed' as const) : ('active' as const) });
  }
  if (locations.length) encounter.location = locations;
  const attending = practitionerName(pv1, 7);
  if (attending) {
    encounter.participant = [{ type: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'ATND', display: 'attender' }] }], individual: { display: attending } }];
  }
  const admitSource = codeableConcept(pv1, 14);
  const disposition = codeableConcept(pv1, 36);
  if (admitSource || disposition) {
    encounter.hospitalization = { ...(admitSource ? { admitSource } : {}), ...(disposition ? { dischargeDisposition: disposition } : {}) };
  }
  const reason = ctx.message.segment('PV2') && codeableConcept(ctx.message.segment('PV2') as V2Segment, 3);
  if (reason) encounter.reasonCode = [reason];

  const diagnoses = addDiagnoses(ctx, visit?.value);
  if (diagnoses.length) encounter.diagnosis = diagnoses;
  if (!visit) {
    ctx.warn('PV1-19 (visit number) is empty: the Encounter is created anew and later messages about this visit cannot update it');
    return ctx.tx.create(encounter);
  }
  return ctx.tx.upsert(encounter, identifierQuery(ctx.system('visit'), visit.value));
}

function addDiagnoses(ctx: MappingContext, visit: string | undefined): EncounterDiagnosis[] {
  const out: EncounterDiagnosis[] = [];
  for (const [index, dg1] of ctx.message.segments('DG1').entries()) {
    const code = codeableConcept(dg1, 3) ?? (dg1.value(4) ? { text: dg1.value(4) } : undefined);
    if (!code) {
      ctx.warn(`DG1 ${index + 1}: no diagnosis code or description: left out`);
      continue;
    }
    const condition: Condition = {
      resourceType: 'Condition',
      category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-category', code: 'encounter-diagnosis' }] }],
      clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
      code,
      subject: ctx.patient as Reference<Patient>,
    };
    const onset = ctx.dateTime(dg1.value(5));
    if (onset) condition.onsetDateTime = onset;
    const type = dg1.value(6).toUpperCase();
    if (type === 'F' || type === 'W' || type === 'A') {
      condition.verificationStatus = {
        coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-ver-status', code: type === 'F' ? 'confirmed' : 'provisional' }],
      };
    }
    // The sender's diagnosis id (DG1-20) keys it; else the visit and the code, so that a re-sent A08 does not add it twice.
    const key = dg1.value(20) || (visit ? `${visit}|${code.coding?.[0]?.code ?? code.text}` : undefined);
    let ref: Reference<Condition>;
    if (key) {
      condition.identifier = [{ system: ctx.system('diagnosis'), value: key }];
      ref = ctx.tx.upsert(condition, identifierQuery(ctx.system('diagnosis'), key));
    } else {
      ref = ctx.tx.create(condition);
    }
    const role = DIAGNOSIS_ROLE[type];
    const rank = Number(dg1.value(15));
    out.push({
      condition: ref,
      ...(role ? { use: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/diagnosis-role', code: role }] } } : {}),
      ...(Number.isInteger(rank) && rank > 0 ? { rank } : {}),
    });
  }
  return out;
}

function datetimeOf(ctx: MappingContext, s: V2Segment, field: number, what: string): string | undefined {
  const text = s.value(field);
  if (!text) return undefined;
  const out = ctx.dateTime(text);
  if (!out) ctx.warn(`${s.name}-${field} ${what} "${text}" is not a valid date/time: left out`);
  return out;
}

/** PL: point of care ^ room ^ bed ^ facility: "4E 136 B (General Hospital)". */
function pointOfCare(s: V2Segment, field: number): string | undefined {
  const parts = [s.value(field, 1), s.value(field, 2), s.value(field, 3)].filter(Boolean).join(' ');
  const facility = s.value(field, 4);
  const text = facility ? `${parts}${parts ? ' ' : ''}(${facility})` : parts;
  return text || undefined;
}

/** XCN: id ^ family ^ given ^ middle ^ suffix ^ prefix: "Dr. Kathleen Woolfson". */
export function practitionerName(s: V2Segment, field: number, repetition = 0): string | undefined {
  const text = [s.value(field, 6, 1, repetition), s.value(field, 3, 1, repetition), s.value(field, 4, 1, repetition), s.value(field, 2, 1, repetition), s.value(field, 5, 1, repetition)]
    .filter(Boolean)
    .join(' ');
  return text || s.value(field, 1, 1, repetition) || undefined;
}
