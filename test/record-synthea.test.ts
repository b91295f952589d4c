import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { goldenOf, ORIGINAL, sendThreeCopies, syntheaPatientBundles } from './helpers/synthea-copies.js';

/*
 * De-duplication measured on the shared Synthea patients, each sent by three participants through their
 * FHIR clients, two of them with perturbations (test/helpers/synthea-copies.ts). Each copy carries a
 * test-only tag naming its original, so that the merged record can be scored: pairs of source records
 * merged into one fact against pairs that are copies of one original (precision, recall), and the number
 * of facts per type against the original counts. Figures: docs/record.md.
 */

const SOURCE = 'https://tessera.dev/fhir/StructureDefinition/merged-source';

/* eslint-disable @typescript-eslint/no-explicit-any */

for (const backend of BACKENDS) {
  describe(`the merged record of 54 Synthea patients sent by three participants (${backend})`, () => {
    let s: TestServer;
    const originals: Bundle[] = syntheaPatientBundles();

    before(async () => {
      s = await startTestServer(backend);
      await sendThreeCopies(s, originals);
    });
    after(async () => s?.close());

    it('returns each person to the original counts, precision >= 0.999 and recall >= 0.98 over merged pairs', async () => {
      let truePairs = 0;
      let predicted = 0;
      let correct = 0;
      const factsByType = new Map<string, number>();
      const originalsByType = new Map<string, number>();
      for (const [n, original] of originals.entries()) {
        const golden = await goldenOf(s, n);
        const copies = (await s.fhir('GET', `Patient/${golden}/$everything?_view=sources&_count=5000`)).body.entry.map((e: any) => e.resource as Resource);
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
        const merged = (await s.fhir('GET', `Patient/${golden}/$merged-record?_count=5000`)).body.entry.map((e: any) => e.resource);
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
