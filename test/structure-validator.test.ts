import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { before, describe, it } from 'node:test';
import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from '@medplum/fhirtypes';
import { loadFhirDefinitions } from '../src/fhir/definitions.js';
import { constraintScope } from '../src/fhir/constraint-scope.js';
import { validateStructure } from '../src/fhir/structure-validator.js';
import { patientBundles } from '../src/synthetic/community.js';
import { Random } from '../src/synthetic/random.js';
import { FIXTURES } from './helpers/paths.js';

/**
 * Tessera's compiled validator must say exactly what @medplum/core's validateResource says (the oracle),
 * issue by issue and path by path, on real resources and on seeded corruptions of them. The one
 * deliberate difference, a JSON number or boolean where an object belongs, is tested on its own below.
 */

type Corpus = { name: string; resource: Resource }[];

function issueKeys(issues: OperationOutcomeIssue[]): string[] {
  return issues.filter((i) => i.severity === 'error').map((i) => `${i.expression?.[0]} | ${i.details?.text}`).sort();
}

function outcomeOf(fn: () => OperationOutcomeIssue[]): string[] {
  try {
    return issueKeys(fn());
  } catch (err) {
    if (err instanceof OperationOutcomeError) {
      return issueKeys(err.outcome.issue ?? []);
    }
    return [`threw ${(err as Error).message}`];
  }
}

const oracle = (r: Resource): string[] => outcomeOf(() => validateResource(r));
const ours = (r: Resource): string[] =>
  outcomeOf(() => validateStructure(r)).filter((k) => !k.includes('Invalid JSON type: expected an object for'));

function loadCorpus(): Corpus {
  const corpus: Corpus = [];
  const examples = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
  for (const f of readdirSync(examples).filter((f) => f.endsWith('.json') && f !== 'package.json' && f !== 'ig-r4.json')) {
    corpus.push({ name: f, resource: JSON.parse(readFileSync(`${examples}/${f}`, 'utf8')) });
  }
  // The 7 Synthea bundles kept in test/fixtures/synthea-r4 (a subset of smart-on-fhir/generated-sample-data, see its README).
  const synthea = `${FIXTURES}/synthea-r4`;
  for (const f of readdirSync(synthea).filter((f) => f.endsWith('.json'))) {
    for (const entry of JSON.parse(readFileSync(`${synthea}/${f}`, 'utf8')).entry) {
      corpus.push({ name: `${f}#${entry.resource.resourceType}`, resource: entry.resource });
    }
  }
  for (const bundle of patientBundles({ patients: 20, seed: 5 })) {
    for (const entry of bundle.entry ?? []) {
      corpus.push({ name: `synthetic#${entry.resource?.resourceType}`, resource: entry.resource as Resource });
    }
  }
  return corpus;
}

/** Every property path of a JSON value, as key lists. */
function propertyPaths(value: unknown, prefix: string[] = [], out: string[][] = []): string[][] {
  if (value && typeof value === 'object') {
    for (const key of Object.keys(value)) {
      out.push([...prefix, key]);
      propertyPaths((value as Record<string, unknown>)[key], [...prefix, key], out);
    }
  }
  return out;
}

/** Corruptions senders really make: missing, null, empty, wrong JSON type, array vs single, bad formats, stray keys. */
const CORRUPTIONS: ((v: unknown) => unknown)[] = [
  () => undefined,
  () => null,
  () => '',
  () => ' padded',
  () => 5,
  () => -1,
  () => 1.5,
  () => true,
  () => ({}),
  () => [],
  () => [null],
  (v) => [v],
  (v) => (Array.isArray(v) ? v[0] : v),
  () => 'not-a-date',
  () => ({ unexpected: 1 }),
  () => ({ extension: [{ url: 'http://example.org/x' }] }),
];

function corrupt(resource: Resource, random: Random): Resource {
  const copy = structuredClone(resource) as unknown as Record<string, unknown>;
  const paths = propertyPaths(copy).filter((p) => p[0] !== 'resourceType');
  if (!paths.length) {
    return copy as unknown as Resource;
  }
  const path = random.pick(paths);
  let parent = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) {
    parent = parent[key] as Record<string, unknown>;
  }
  const key = path[path.length - 1];
  const replacement = random.pick(CORRUPTIONS)(parent[key]);
  if (replacement !== undefined) {
    parent[key] = replacement;
  } else if (Array.isArray(parent)) {
    parent.splice(Number(key), 1);
  } else {
    delete parent[key];
  }
  if (random.chance(0.2) && !Array.isArray(parent)) {
    parent[`_${key}`] = { extension: [{ url: 'http://example.org/e', valueString: 'x' }] };
  }
  return copy as unknown as Resource;
}

describe('compiled structure validator against @medplum/core', () => {
  let corpus: Corpus;
  before(() => {
    loadFhirDefinitions();
    corpus = loadCorpus();
  });

  it('agrees on every official R4 example, Synthea and synthetic resource', () => {
    // 5,305 official examples, 887 Synthea resources, 738 synthetic ones.
    assert.ok(corpus.length > 6900, `corpus holds ${corpus.length} resources`);
    const disagreements: string[] = [];
    let rejected = 0;
    for (const { name, resource } of corpus) {
      const expected = oracle(resource);
      rejected += expected.length ? 1 : 0;
      if (JSON.stringify(expected) !== JSON.stringify(ours(resource))) {
        disagreements.push(name);
      }
    }
    assert.deepEqual(disagreements, []);
    assert.ok(rejected >= 20, 'the corpus includes resources the oracle rejects, so agreement covers errors too');
  });

  it('agrees issue by issue on 6,000 seeded corruptions', () => {
    const random = new Random(20261125);
    const small = corpus.filter(({ resource }) => JSON.stringify(resource).length < 8000);
    let invalid = 0;
    const disagreements: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const { name, resource } = random.pick(small);
      const broken = corrupt(resource, random);
      const expected = oracle(broken);
      const actual = ours(broken);
      invalid += expected.length ? 1 : 0;
      if (JSON.stringify(expected) !== JSON.stringify(actual)) {
        disagreements.push(`${name}: oracle ${JSON.stringify(expected)} ours ${JSON.stringify(actual)}`);
      }
    }
    assert.deepEqual(disagreements.slice(0, 5), []);
    assert.ok(invalid > 2000, `${invalid} of the corruptions are invalid, so the comparison exercises error paths`);
  });

  it('an invariant skipped on a value without the elements it reads gives the result evaluating it gives', () => {
    // Each of these has an invariant whose elements are all absent (pat-1 on a contact with only a gender,
    // dom-2/4/5 everywhere), one whose elements are present, and one that reads more than its context.
    const cases: Resource[] = [
      { resourceType: 'Patient', contact: [{ gender: 'male' }] } as Resource,
      { resourceType: 'Patient', contact: [{ gender: 'male', name: { family: 'Kin' } }] } as Resource,
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, dataAbsentReason: { text: 'y' }, valueString: 'z' } as Resource,
      { resourceType: 'Observation', status: 'final', code: { text: 'x' }, referenceRange: [{ type: { text: 'normal' } }] } as Resource,
      { resourceType: 'Condition', subject: { reference: 'Patient/1' }, abatementString: 'gone' } as Resource,
      { resourceType: 'Condition', subject: { reference: 'Patient/1' }, clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] }, abatementString: 'gone' } as Resource,
      { resourceType: 'Period', start: '2020-01-02', end: '2020-01-01' } as unknown as Resource,
    ];
    for (const resource of cases) {
      assert.deepEqual(ours(resource), oracle(resource), JSON.stringify(resource));
    }
    assert.ok(ours(cases[0]).some((k) => k.includes('pat-1')), 'pat-1 fails on a contact with none of its elements');
    assert.deepEqual(constraintScope('contained.contained.empty()'), ['contained']);
    assert.deepEqual(constraintScope("abatement.empty() or clinicalStatus.coding.where(system='urn:x' and code='resolved').exists()"), ['abatement', 'clinicalStatus', 'system', 'code']);
    for (const unscoped of ['Patient.name.exists()', 'exists()', 'hasValue() or (children().count() > id.count())', 'value.empty() or code.where(%resource.code.exists())', '$this.value.exists()', 'iif(a.exists(), true, false)']) {
      assert.equal(constraintScope(unscoped), undefined, unscoped);
    }
  });

  it('rejects a number or boolean where an object belongs, which the oracle lets through', () => {
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '8867-4' }] },
      subject: 5,
    } as unknown as Resource;
    assert.deepEqual(oracle(observation), []);
    assert.deepEqual(issueKeys(validateStructure(observation)), [
      'Observation.subject | Invalid JSON type: expected an object for Reference, but got number',
    ]);
  });

  it('reports a primitive extension that is not an object instead of failing', () => {
    const patient = { resourceType: 'Patient', birthDate: '1970-01-01', _birthDate: 'x' } as unknown as Resource;
    assert.deepEqual(issueKeys(validateStructure(patient)), ['Patient._birthDate | Primitive extension must be an object']);
  });
});
