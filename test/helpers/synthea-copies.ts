import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Bundle } from '@medplum/fhirtypes';
import { addParticipant } from '../../src/participants/participants.js';
import { convertQuantity, ICD10CM, LOINC, SNOMED, sourceCodingFor } from '../../src/record/code-maps.js';
import { FIXTURES } from './paths.js';
import { getToken, type TestServer } from './server.js';

/*
 * The shared Synthea patients (test/fixtures/synthea-r4-all: the 54 patient Bundles of the 55 shared
 * Synthea files; the 55th holds only organisations), each sent by three participants through their FHIR
 * clients, two of them with the perturbations written below: the longitudinal record's realistic input
 * (test/record-synthea.test.ts scores its de-duplication, test/record-closure.test.ts its merged searches).
 * Each copy carries a test-only tag naming its original.
 */

export const ORIGINAL = 'urn:test:synthea-original';
const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
export const PARTICIPANTS = ['riverside', 'lakeside', 'hillcrest'] as const;
export type Participant = (typeof PARTICIPANTS)[number];

/* eslint-disable @typescript-eslint/no-explicit-any */

/** A small deterministic generator (mulberry32), so that every run perturbs the same way. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TIME_FIELDS = ['effectiveDateTime', 'issued', 'onsetDateTime', 'performedDateTime', 'occurrenceDateTime', 'authoredOn'];
const PERIOD_FIELDS = ['effectivePeriod', 'performedPeriod', 'period'];
const shifted = (v: string, minutes: number) => new Date(Date.parse(v) + minutes * 60_000).toISOString();
const UNIT_SWAPS: Record<string, string> = { kg: '[lb_av]', cm: '[in_i]', Cel: '[degF]', 'g/dL': 'g/L', 'mg/dL': 'mg/L' };

/**
 * What each participant's system does to the record: Riverside sends it as it is; Lakeside shifts times
 * by 1-7 minutes, rounds values, sends lab codes in its local code system where the maps have one and
 * drops displays and texts; Hillcrest shifts times back by 1-7 minutes, converts units and sends problems
 * in ICD-10-CM where the maps have one. Every participant has its own MRN for the patient.
 */
function perturb(resource: any, who: Participant, next: () => number, mrn: string): void {
  if (resource.resourceType === 'Patient') {
    resource.identifier = [...resource.identifier.filter((i: any) => i.type?.coding?.[0]?.code !== 'MR' && i.system !== 'https://github.com/synthetichealth/synthea'), { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, system: `urn:example:${who}:mrn`, value: mrn }];
    return;
  }
  if (who === 'riverside') return;
  const minutes = (1 + Math.floor(next() * 7)) * (who === 'lakeside' ? 1 : -1);
  for (const f of TIME_FIELDS) if (typeof resource[f] === 'string' && resource[f].length > 10) resource[f] = shifted(resource[f], minutes);
  for (const f of PERIOD_FIELDS) {
    const p = resource[f];
    if (p?.start?.length > 10) p.start = shifted(p.start, minutes);
    if (p?.end?.length > 10) p.end = shifted(p.end, minutes);
  }
  const q = resource.valueQuantity;
  if (who === 'lakeside') {
    if (typeof q?.value === 'number') q.value = Math.abs(q.value) >= 10 ? Math.round(q.value) : Math.round(q.value * 10) / 10;
    if (resource.resourceType === 'Observation' && next() < 0.5) {
      resource.code.coding = resource.code.coding.map((c: any) => (c.system === LOINC && sourceCodingFor(LOINC, c.code) ? sourceCodingFor(LOINC, c.code) : c));
    }
    for (const k of ['code', 'vaccineCode', 'medicationCodeableConcept']) {
      if (resource[k]) {
        delete resource[k].text;
        resource[k].coding = resource[k].coding?.map(({ display: _d, ...c }: any) => c);
      }
    }
  } else {
    const to = q && UNIT_SWAPS[q.code];
    if (to && typeof q.value === 'number') {
      q.value = Math.round((convertQuantity(q.value, q.code, to) as number) * 100) / 100;
      q.unit = to;
      q.code = to;
    }
    if (resource.resourceType === 'Condition') {
      resource.code.coding = resource.code.coding.map((c: any) => (c.system === SNOMED && sourceCodingFor(SNOMED, c.code)?.system === ICD10CM ? sourceCodingFor(SNOMED, c.code) : c));
    }
  }
}

/** The patient Bundles of the shared Synthea files, in file order. */
export function syntheaPatientBundles(): Bundle[] {
  return gunzipSync(readFileSync(join(FIXTURES, 'synthea-r4-all', 'synthea-r4.ndjson.gz')))
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Bundle)
    .filter((b) => b.entry?.some((e) => e.resource?.resourceType === 'Patient'));
}

/** Registers the three participants and sends each Bundle as each of them would (patient n's MRN at participant p is `p-n`). */
export async function sendThreeCopies(s: TestServer, originals: readonly Bundle[]): Promise<void> {
  const tokens: Partial<Record<Participant, string>> = {};
  for (const who of PARTICIPANTS) {
    const { client } = await addParticipant(s.tessera.repo, { name: who, mrnSystem: `urn:example:${who}:mrn`, scope: 'system/*.cruds' });
    tokens[who] = await getToken(s.url, client!.clientId, client!.clientSecret as string);
  }
  for (const [n, original] of originals.entries()) {
    for (const [p, who] of PARTICIPANTS.entries()) {
      const copy: Bundle = JSON.parse(JSON.stringify(original));
      const next = random(n * 3 + p + 1);
      for (const e of copy.entry ?? []) {
        const r = e.resource as any;
        if (r.resourceType !== 'Organization' && r.resourceType !== 'Practitioner') r.meta = { tag: [{ system: ORIGINAL, code: e.fullUrl }] };
        perturb(r, who, next, `${who}-${n}`);
      }
      const res = await s.fhir('POST', '', copy, { authorization: `Bearer ${tokens[who]}` });
      assert.equal(res.status, 200, JSON.stringify(res.body).slice(0, 500));
    }
  }
}

/** The enterprise (golden) Patient id of Synthea patient n, found by its Riverside MRN. */
export async function goldenOf(s: TestServer, n: number): Promise<string> {
  const found = await s.fhir('GET', `Patient?identifier=urn:example:riverside:mrn|riverside-${n}`);
  const source = found.body.entry[0].resource.id;
  const golden = (await s.fhir('GET', `Patient?link=Patient/${source}`)).body.entry?.[0]?.resource;
  assert.ok(golden, `patient ${n} has an enterprise record`);
  return golden.id;
}
