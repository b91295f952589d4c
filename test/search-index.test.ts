import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { before, describe, it } from 'node:test';
import type { Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { extractIndexRows, type IndexRows, type ParamEvaluator } from '../src/search/index-values.js';
import { patientBundles } from '../src/synthetic/community.js';
import { SHARED_DATA } from './helpers/paths.js';

/**
 * The search index is built from the R4 SearchParameter expressions through compiled property navigation
 * (src/search/path-compiler.ts). Here every resource of the official R4 examples, Synthea and the
 * synthetic community is indexed both ways, compiled and with Medplum's FHIRPath engine, and the rows
 * must be the same.
 */

const engine: ParamEvaluator = (param, input) => param.atom.eval({ variables: {} }, input);

/**
 * Where the engine is wrong and the compiled path is not: a union (`|`) removes "duplicates" with
 * FHIRPath equality, and Medplum's quantity equality treats values within 0.01 of each other as equal,
 * so 1e-245 g is dropped next to 0 g in this example's components.
 */
const ENGINE_WRONG = new Set(['Observation-decimal.json']);

function canonical(rows: IndexRows): Record<string, string[]> {
  return Object.fromEntries(Object.entries(rows).map(([kind, list]) => [kind, (list as unknown[]).map((r) => JSON.stringify(r)).sort()]));
}

describe('search index extraction: compiled paths against the FHIRPath engine', () => {
  const corpus: { name: string; resource: Resource }[] = [];
  before(() => {
    loadFhirDefinitions();
    const examples = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
    for (const f of readdirSync(examples).filter((f) => f.endsWith('.json') && f !== 'package.json' && f !== 'ig-r4.json')) {
      corpus.push({ name: f, resource: JSON.parse(readFileSync(`${examples}/${f}`, 'utf8')) });
    }
    const synthea = `${SHARED_DATA}/synthea-r4`;
    for (const f of readdirSync(synthea).filter((f) => f.endsWith('.json'))) {
      for (const entry of JSON.parse(readFileSync(`${synthea}/${f}`, 'utf8')).entry) {
        corpus.push({ name: `${f}#${entry.fullUrl}`, resource: entry.resource });
      }
    }
    for (const bundle of patientBundles({ patients: 30, seed: 9 })) {
      for (const entry of bundle.entry ?? []) {
        corpus.push({ name: `synthetic#${entry.fullUrl}`, resource: entry.resource as Resource });
      }
    }
  });

  it('yields the same index rows for every resource', () => {
    const disagreements: string[] = [];
    let rows = 0;
    for (const { name, resource } of corpus) {
      const withId = { ...resource, id: resource.id ?? 'example' } as Resource;
      const compiled = canonical(extractIndexRows(withId));
      rows += Object.values(compiled).reduce((n, list) => n + list.length, 0);
      if (!ENGINE_WRONG.has(name) && JSON.stringify(compiled) !== JSON.stringify(canonical(extractIndexRows(withId, engine)))) {
        disagreements.push(name);
      }
    }
    assert.deepEqual(disagreements, []);
    assert.ok(corpus.length > 15000 && rows > 150000, `${corpus.length} resources, ${rows} rows compared`);
  });

  it('keeps quantities the engine merges by its 0.01 tolerance', () => {
    const observation = corpus.find((c) => c.name === 'Observation-decimal.json')?.resource as Resource;
    const values = (rows: IndexRows) => rows.quantity.filter((q) => q[0] === 'component-value-quantity').map((q) => q[1]);
    assert.ok(values(extractIndexRows(observation)).includes(1e-245));
    assert.ok(!values(extractIndexRows(observation, engine)).includes(1e-245));
  });

  it('indexes a primitive that carries an extension by its value', () => {
    const patient = {
      resourceType: 'Patient',
      id: 'p1',
      birthDate: '1970-03-04',
      _birthDate: { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/patient-birthTime', valueDateTime: '1970-03-04T05:06:00Z' }] },
    } as Resource;
    const birthdate = extractIndexRows(patient).date.filter((d) => d[0] === 'birthdate');
    assert.equal(birthdate.length, 1);
    assert.equal(birthdate[0][1], Date.UTC(1970, 2, 4));
  });
});
