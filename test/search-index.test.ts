import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { before, describe, it } from 'node:test';
import { parseFhirPath, type FhirPathAtom } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { extractIndexRows, type IndexRows, type ParamEvaluator } from '../src/search/index-values.js';
import { getCompiledParam } from '../src/search/parameters.js';
import { patientBundles } from '../src/synthetic/community.js';
import { FIXTURES } from './helpers/paths.js';

/**
 * The search index is built from the R4 SearchParameter expressions through compiled property navigation
 * (src/search/path-compiler.ts). Here every resource of the official R4 examples, the Synthea fixtures and the
 * synthetic community is indexed both ways, compiled and with Medplum's FHIRPath engine, and the rows
 * must be the same.
 */

const engine: ParamEvaluator = (param, input) => param.atom.eval({ variables: {} }, input);

/**
 * The engine with FHIRPath's as() function meaning what the spec says. Medplum's as() returns its input
 * unfiltered, so the expression is re-parsed with each `path.as(Type)` written as the `as` operator,
 * which Medplum does filter (FHIRPath's own DateTime/String names written as the FHIR primitive names).
 */
const SYSTEM_TO_FHIR: Record<string, string> = { DateTime: 'dateTime', String: 'string', Date: 'date', Boolean: 'boolean' };
const rewritten = new Map<string, FhirPathAtom>();
const specEngine: ParamEvaluator = (param, input) => {
  const text = String(param.atom);
  if (!text.includes('.as(')) {
    return engine(param, input);
  }
  let atom = rewritten.get(text);
  if (!atom) {
    atom = parseFhirPath(text.replace(/([A-Za-z][\w.]*)\.as\((\w+)\)/g, (_, path, type) => `(${path} as ${SYSTEM_TO_FHIR[type] ?? type})`));
    rewritten.set(text, atom);
  }
  return atom.eval({ variables: {} }, input);
};

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
    // The 7 Synthea bundles kept in test/fixtures/synthea-r4 (a subset of smart-on-fhir/generated-sample-data, see its README).
    const synthea = `${FIXTURES}/synthea-r4`;
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
      if (!ENGINE_WRONG.has(name) && JSON.stringify(compiled) !== JSON.stringify(canonical(extractIndexRows(withId, specEngine)))) {
        disagreements.push(name);
      }
    }
    assert.deepEqual(disagreements, []);
    // 5,305 official examples, 887 Synthea and 922 synthetic resources: 7,114 resources, about 140,700 rows.
    assert.ok(corpus.length > 7000 && rows > 135000, `${corpus.length} resources, ${rows} rows compared`);
  });

  it('keeps quantities the engine merges by its 0.01 tolerance', () => {
    const observation = corpus.find((c) => c.name === 'Observation-decimal.json')?.resource as Resource;
    const values = (rows: IndexRows) => rows.quantity.filter((q) => q[0] === 'component-value-quantity').map((q) => q[1]);
    assert.ok(values(extractIndexRows(observation)).includes(1e-245));
    assert.ok(!values(extractIndexRows(observation, engine)).includes(1e-245));
  });

  it('indexes a choice element only under the parameters of its type (as() filters)', () => {
    const codes = (rows: IndexRows, kind: 'composite' | 'string' | 'date' | 'quantity') => new Set(rows[kind].map((r) => r[0]));
    const code = { coding: [{ system: 'http://loinc.org', code: '8480-6' }] };
    const quantity = extractIndexRows({ resourceType: 'Observation', id: 'q', status: 'final', code, valueQuantity: { value: 120, system: 'http://unitsofmeasure.org', code: 'mm[Hg]' } });
    // combo-code-value-quantity is answered from these rows (stored as code-value-quantity + component-...).
    assert.deepEqual([...codes(quantity, 'composite')], ['code-value-quantity']);
    const concept = extractIndexRows({ resourceType: 'Observation', id: 'c', status: 'final', code, valueCodeableConcept: { coding: [{ system: 'http://snomed.info/sct', code: '260385009' }] } });
    assert.deepEqual([...codes(concept, 'composite')], ['code-value-concept']);
    const text = extractIndexRows({ resourceType: 'Observation', id: 's', status: 'final', code, valueString: 'negative' });
    assert.deepEqual([...codes(text, 'composite')], ['code-value-string']);
    const when = extractIndexRows({ resourceType: 'Observation', id: 'd', status: 'final', code, valueDateTime: '2024-05-06' });
    assert.deepEqual([...codes(when, 'composite')], ['code-value-date']);

    const dated = extractIndexRows({ resourceType: 'Condition', id: 'd', subject: { reference: 'Patient/p' }, onsetDateTime: '2020-01-02' });
    assert.ok(codes(dated, 'date').has('onset-date'));
    assert.ok(!codes(dated, 'string').has('onset-info'));
    const described = extractIndexRows({ resourceType: 'Condition', id: 's', subject: { reference: 'Patient/p' }, onsetString: 'childhood' });
    assert.ok(codes(described, 'string').has('onset-info'));
    assert.ok(!codes(described, 'date').has('onset-date'));
    const aged = extractIndexRows({ resourceType: 'Condition', id: 'a', subject: { reference: 'Patient/p' }, onsetAge: { value: 4, system: 'http://unitsofmeasure.org', code: 'a' } });
    assert.ok(codes(aged, 'quantity').has('onset-age'));
  });

  it('does not store rows that other parameters already hold (combo-code, patient)', () => {
    const rows = extractIndexRows({
      resourceType: 'Observation',
      id: 'o',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] },
      subject: { reference: 'Patient/p' },
      valueQuantity: { value: 120 },
    });
    const codes = new Set([...rows.token, ...rows.reference, ...rows.quantity].map((r) => r[0]));
    for (const stored of ['code', 'subject', 'value-quantity']) {
      assert.ok(codes.has(stored), stored);
    }
    for (const derived of ['combo-code', 'patient', 'combo-value-quantity']) {
      assert.ok(!codes.has(derived), derived);
    }
    assert.deepEqual(getCompiledParam('Observation', 'patient')?.storedAs, { codes: ['subject'], targetType: 'Patient' });
    assert.deepEqual(getCompiledParam('Observation', 'combo-code')?.storedAs?.codes.sort(), ['code', 'component-code']);
    // A Patient-compartment parameter keeps its own rows: the compartment is computed from them.
    assert.equal(getCompiledParam('Observation', 'subject')?.storedAs, undefined);
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
