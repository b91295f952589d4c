import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { MERGE_RULES } from '../src/record/merge-rules.js';
import { mergeRecords, type SourceRecord } from '../src/record/merged-record.js';
import { ingredientsOf, ingredientsOfName } from '../src/record/drug-ingredients.js';
import { MergedViewCache, mergeInputKey } from '../src/engine/operations/merged-view-cache.js';

/*
 * Each type's rule on its own: a pair of records from two sources that is one fact, and one that is
 * two (the rule's concept or its time tolerance tells them apart). Records written here, in the shape
 * participants send (codes from LOINC, SNOMED CT, RxNorm, CVX, ICD-10-CM).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

let n = 0;
const from = (source: string, resource: any): SourceRecord => ({ resource: { id: `r${++n}`, ...resource } as Resource, sourcePatient: source, participant: { reference: `Organization/${source}`, display: source } });
const cc = (system: string, code: string) => ({ coding: [{ system, code }] });
const LOINC = 'http://loinc.org';
const SCT = 'http://snomed.info/sct';

/** type -> [a record, a record of the same fact from elsewhere, a record of another fact]. */
const CASES: Record<string, [any, any, any]> = {
  Observation: [
    { resourceType: 'Observation', code: cc(LOINC, '2339-0'), effectiveDateTime: '2026-01-01T08:00:00Z', valueQuantity: { value: 100, code: 'mg/dL' } },
    { resourceType: 'Observation', code: cc('urn:tessera:local-lab-codes', 'GLU'), effectiveDateTime: '2026-01-01T08:10:00Z', valueQuantity: { value: 1000, code: 'mg/L' } },
    { resourceType: 'Observation', code: cc(LOINC, '2339-0'), effectiveDateTime: '2026-01-01T09:00:00Z', valueQuantity: { value: 100, code: 'mg/dL' } },
  ],
  Condition: [
    { resourceType: 'Condition', code: cc(SCT, '38341003'), onsetDateTime: '2019-05-01' },
    { resourceType: 'Condition', code: cc('http://hl7.org/fhir/sid/icd-10-cm', 'I10'), onsetDateTime: '2019-05-01T10:00:00Z' },
    { resourceType: 'Condition', code: cc(SCT, '38341003'), onsetDateTime: '2021-05-01' },
  ],
  MedicationRequest: [
    { resourceType: 'MedicationRequest', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '314076'), authoredOn: '2026-02-01' },
    { resourceType: 'MedicationRequest', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '314076'), authoredOn: '2026-02-01T12:00:00Z' },
    { resourceType: 'MedicationRequest', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '314077'), authoredOn: '2026-02-01' },
  ],
  MedicationStatement: [
    { resourceType: 'MedicationStatement', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '860975'), effectiveDateTime: '2025-01-01' },
    { resourceType: 'MedicationStatement', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '860975'), effectiveDateTime: '2025-01-01' },
    { resourceType: 'MedicationStatement', status: 'active', medicationCodeableConcept: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '860975'), effectiveDateTime: '2025-03-01' },
  ],
  AllergyIntolerance: [
    { resourceType: 'AllergyIntolerance', code: { coding: [{ system: SCT, code: '764146007' }, { system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '7980' }] } },
    { resourceType: 'AllergyIntolerance', code: cc('http://www.nlm.nih.gov/research/umls/rxnorm', '7980') },
    { resourceType: 'AllergyIntolerance', code: cc(SCT, '91935009') },
  ],
  Immunization: [
    { resourceType: 'Immunization', status: 'completed', vaccineCode: cc('http://hl7.org/fhir/sid/cvx', '140'), occurrenceDateTime: '2025-10-01T09:00:00Z' },
    { resourceType: 'Immunization', status: 'completed', vaccineCode: cc('http://hl7.org/fhir/sid/cvx', '140'), occurrenceDateTime: '2025-10-01' },
    { resourceType: 'Immunization', status: 'completed', vaccineCode: cc('http://hl7.org/fhir/sid/cvx', '140'), occurrenceDateTime: '2024-10-01' },
  ],
  Encounter: [
    { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, serviceProvider: { identifier: { system: 'urn:npi', value: '1' } }, period: { start: '2026-01-01T08:00:00Z' } },
    { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, serviceProvider: { identifier: { system: 'urn:npi', value: '1' } }, period: { start: '2026-01-01T08:05:00Z' } },
    { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, serviceProvider: { identifier: { system: 'urn:npi', value: '2' } }, period: { start: '2026-01-01T08:00:00Z' } },
  ],
  Procedure: [
    { resourceType: 'Procedure', status: 'completed', code: cc(SCT, '80146002'), performedDateTime: '2020-01-01T10:00:00Z' },
    { resourceType: 'Procedure', status: 'completed', code: cc(SCT, '80146002'), performedDateTime: '2020-01-01T10:30:00Z' },
    { resourceType: 'Procedure', status: 'completed', code: cc(SCT, '80146002'), performedDateTime: '2020-01-01T13:00:00Z' },
  ],
  DiagnosticReport: [
    { resourceType: 'DiagnosticReport', status: 'final', code: cc(LOINC, '24323-8'), basedOn: [{ identifier: { system: 'urn:orders', value: 'A1' } }], effectiveDateTime: '2026-01-01T08:00:00Z' },
    { resourceType: 'DiagnosticReport', status: 'final', code: cc(LOINC, '24323-8'), basedOn: [{ identifier: { system: 'urn:orders', value: 'A1' } }], effectiveDateTime: '2026-01-02T08:00:00Z' },
    { resourceType: 'DiagnosticReport', status: 'final', code: cc(LOINC, '24323-8'), effectiveDateTime: '2026-01-05T08:00:00Z' },
  ],
  ServiceRequest: [
    { resourceType: 'ServiceRequest', status: 'active', intent: 'order', code: cc(LOINC, '4548-4'), identifier: [{ system: 'urn:orders', value: 'O-9' }], authoredOn: '2026-01-01' },
    { resourceType: 'ServiceRequest', status: 'active', intent: 'order', code: cc(LOINC, '4548-4'), identifier: [{ system: 'urn:orders', value: 'O-9' }], authoredOn: '2026-01-03' },
    { resourceType: 'ServiceRequest', status: 'active', intent: 'order', code: cc(LOINC, '4548-4'), identifier: [{ system: 'urn:orders', value: 'O-10' }], authoredOn: '2026-01-10' },
  ],
  CarePlan: [
    { resourceType: 'CarePlan', status: 'active', intent: 'plan', category: [cc(SCT, '698360004')], period: { start: '2026-01-01T08:00:00Z' } },
    { resourceType: 'CarePlan', status: 'active', intent: 'plan', category: [cc(SCT, '698360004')], period: { start: '2026-01-01T08:07:00Z' } },
    { resourceType: 'CarePlan', status: 'active', intent: 'plan', category: [cc(SCT, '734163000')], period: { start: '2026-01-01T08:00:00Z' } },
  ],
  DocumentReference: [
    { resourceType: 'DocumentReference', status: 'current', masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4' }, content: [{ attachment: { hash: 'aGFzaDE=' } }] },
    { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { hash: 'aGFzaDE=' } }] },
    { resourceType: 'DocumentReference', status: 'current', masterIdentifier: { system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.5' } },
  ],
};

describe('merge rules, type by type', () => {
  it('covers every rule of the table', () => {
    assert.deepEqual(Object.keys(CASES).sort(), MERGE_RULES.map((r) => r.type).sort());
  });
  for (const [type, [a, same, other]] of Object.entries(CASES)) {
    it(`${type}: ${MERGE_RULES.find((r) => r.type === type)?.matchOn}`, () => {
      const facts = mergeRecords([from('a', a), from('b', same), from('c', other)]);
      assert.equal(facts.length, 2, JSON.stringify(facts.map((f) => f.sources.map((s) => s.sourcePatient))));
      assert.deepEqual(facts.map((f) => f.sources.map((s) => s.sourcePatient).join('+')).sort(), ['a+b', 'c']);
      // Two records of one source are never one fact.
      assert.equal(mergeRecords([from('a', a), from('a', same)]).length, 2);
    });
  }
  it('the fallback: identical content apart from ids, references and meta', () => {
    const goal = (patient: string) => ({ resourceType: 'Goal', lifecycleStatus: 'active', description: { text: 'Lose weight' }, subject: { reference: `Patient/${patient}` }, meta: { versionId: patient } });
    assert.equal(mergeRecords([from('a', goal('a')), from('b', goal('b'))]).length, 1);
    assert.equal(mergeRecords([from('a', goal('a')), from('b', { ...goal('b'), description: { text: 'Stop smoking' } })]).length, 2);
  });
});

describe('drug ingredients from RxNorm names (duplicate therapy)', () => {
  // Names as RxNorm normalizes them (SCD/SBD), several from the Synthea fixtures.
  it('reads each ingredient without its salt, strength, form, leading quantity or brand', () => {
    assert.deepEqual(ingredientsOfName('Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet'), ['amoxicillin', 'clavulanate']);
    assert.deepEqual(ingredientsOfName('24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet'), ['metformin']);
    assert.deepEqual(ingredientsOfName('Naproxen sodium 220 MG Oral Tablet'), ['naproxen']);
    assert.deepEqual(ingredientsOfName('lisinopril 10 MG Oral Tablet [Zestril]'), ['lisinopril']);
    assert.deepEqual(ingredientsOfName('Chlorpheniramine Maleate 2 MG/ML Oral Solution'), ['chlorpheniramine']);
    assert.deepEqual(ingredientsOfName('1 ML Epinephrine 1 MG/ML Auto-Injector'), ['epinephrine']);
    assert.deepEqual(ingredientsOfName('Oral Tablet'), [], 'no strength: not a clinical drug name');
  });
  it('only from RxNorm codings', () => {
    assert.deepEqual(ingredientsOf({ coding: [{ system: 'urn:local', code: 'x', display: 'Metformin 500 MG Oral Tablet' }] }), []);
    assert.deepEqual(ingredientsOf({ coding: [{ system: 'http://www.nlm.nih.gov/research/umls/rxnorm', code: '860975', display: 'metformin hydrochloride 500 MG Oral Tablet' }] }), ['metformin']);
  });
});

describe('the memo of the merge', () => {
  it('keeps the most recently used entries within its bound of source records', () => {
    const memo = new MergedViewCache<string>(10);
    memo.set('a', 'A', 4);
    memo.set('b', 'B', 4);
    assert.equal(memo.get('a'), 'A'); // a is now the most recent
    memo.set('c', 'C', 4); // 12 > 10: b, the least recently used, goes
    assert.equal(memo.get('b'), undefined);
    assert.equal(memo.get('a'), 'A');
    assert.equal(memo.get('c'), 'C');
    memo.set('huge', 'H', 11);
    assert.equal(memo.get('huge'), undefined, 'an entry larger than the bound is not kept');
  });
  it('keys by the exact input: a version, a record or its source record changes the key', () => {
    const e = (id: string, version: number, patient?: string) => ({ type: 'Observation', id, json: '', lastUpdated: 0, version, patient });
    const base = mergeInputKey('p', [e('1', 1, 'a'), e('2', 1, 'b')]);
    assert.equal(mergeInputKey('p', [e('2', 1, 'b'), e('1', 1, 'a')]), base, 'order does not matter');
    assert.notEqual(mergeInputKey('p', [e('1', 2, 'a'), e('2', 1, 'b')]), base);
    assert.notEqual(mergeInputKey('p', [e('1', 1, 'a')]), base);
    assert.notEqual(mergeInputKey('p', [e('1', 1, 'a'), e('2', 1, 'c')]), base);
    assert.notEqual(mergeInputKey('q', [e('1', 1, 'a'), e('2', 1, 'b')]), base);
  });
});
