import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { addParticipant } from '../src/participants/participants.js';
import { convertQuantity, ICD10CM, LOINC, SNOMED, sourceCodingFor } from '../src/record/code-maps.js';
import { BACKENDS } from './helpers/backends.js';
import { join } from 'node:path';
import { FIXTURES } from './helpers/paths.js';
import { getToken, startTestServer, type TestServer } from './helpers/server.js';

/*
 * De-duplication measured on the shared Synthea patients (test/fixtures/synthea-r4-all: the 54 patient
 * Bundles of the 55 shared Synthea files; the 55th holds only organisations), each sent by three
 * participants through their FHIR clients, two of them with the perturbations written below. Each copy
 * carries a test-only tag naming its original, so that the merged record can be scored: pairs of source
 * records merged into one fact against pairs that are copies of one original (precision, recall), and
 * the number of facts per type against the original counts. Figures: docs/record.md.
 */

const ORIGINAL = 'urn:test:synthea-original';
const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';
const PARTICIPANTS = ['riverside', 'lakeside', 'hillcrest'] as const;
type Participant = (typeof PARTICIPANTS)[number];

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

for (const backend of BACKENDS) {
  describe(`the merged record of 54 Synthea patients sent by three participants (${backend})`, () => {
    let s: TestServer;
    const originals: Bundle[] = gunzipSync(readFileSync(join(FIXTURES, 'synthea-r4-all', 'synthea-r4.ndjson.gz')))
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Bundle)
      .filter((b) => b.entry?.some((e) => e.resource?.resourceType === 'Patient'));

    before(async () => {
      s = await startTestServer(backend);
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
    });
    after(async () => s?.close());

    it('returns each person to the original counts, precision >= 0.999 and recall >= 0.98 over merged pairs', async () => {
      let truePairs = 0;
      let predicted = 0;
      let correct = 0;
      const factsByType = new Map<string, number>();
      const originalsByType = new Map<string, number>();
      for (const [n, original] of originals.entries()) {
        const found = await s.fhir('GET', `Patient?identifier=urn:example:riverside:mrn|riverside-${n}`);
        const source = found.body.entry[0].resource.id;
        const golden = (await s.fhir('GET', `Patient?link=Patient/${source}`)).body.entry?.[0]?.resource;
        assert.ok(golden, `patient ${n} has an enterprise record`);
        const copies = (await s.fhir('GET', `Patient/${golden.id}/$everything?_view=sources&_count=5000`)).body.entry.map((e: any) => e.resource as Resource);
        const originalOf = new Map(copies.map((r: any) => [`${r.resourceType}/${r.id}`, r.meta?.tag?.find((t: any) => t.system === ORIGINAL)?.code]));
        const perSource = new Set(copies.map((r: any) => r.meta?.source));
        assert.ok(perSource.size >= 3, `patient ${n}: the three participants' copies are linked (${perSource.size} sources)`);
        for (const e of original.entry ?? []) {
          const t = e.resource!.resourceType;
          if (t !== 'Patient' && t !== 'Organization' && t !== 'Practitioner') {
            originalsByType.set(t, (originalsByType.get(t) ?? 0) + 1);
            truePairs += 3;
          }
        }
        const merged = (await s.fhir('GET', `Patient/${golden.id}/$merged-record?_count=5000`)).body.entry.map((e: any) => e.resource);
        for (const fact of merged.filter((r: any) => r.meta?.tag?.some((t: any) => t.code === 'merged'))) {
          factsByType.set(fact.resourceType, (factsByType.get(fact.resourceType) ?? 0) + 1);
          const sources = fact.extension.filter((x: any) => x.url === SOURCE).map((x: any) => originalOf.get(x.valueReference.reference));
          for (let i = 0; i < sources.length; i++) {
            for (let j = i + 1; j < sources.length; j++) {
              predicted++;
              if (sources[i] && sources[i] === sources[j]) correct++;
            }
          }
        }
      }
      const precision = correct / predicted;
      const recall = correct / truePairs;
      const counts = [...originalsByType].map(([t, c]) => `${t} ${factsByType.get(t) ?? 0}/${c}`).join(', ');
      console.log(`# ${backend}: ${originals.length} patients x 3 participants; precision ${precision.toFixed(5)} (${correct}/${predicted}), recall ${recall.toFixed(5)} (${correct}/${truePairs}); facts/originals: ${counts}`);
      for (const [t, c] of originalsByType) assert.equal(factsByType.get(t), c, `${t}: as many facts as the original has resources`);
      assert.ok(precision >= 0.999, `precision ${precision}`);
      assert.ok(recall >= 0.98, `recall ${recall}`);
    });
  });
}
