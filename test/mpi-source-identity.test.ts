import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Identifier, Patient } from '@medplum/fhirtypes';
import { sourceIdentifier } from '../src/mpi/source-identity.js';

const typed = (code: string, system: string, value: string): Identifier => ({
  type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code }] },
  system,
  value,
});
const of = (...identifier: Identifier[]): string | undefined => {
  const found = sourceIdentifier({ resourceType: 'Patient', identifier } as Patient);
  return found && `${found.system}|${found.value}`;
};

describe('source identifier: the record number a source gave its own record', () => {
  it('takes the MR-typed identifier wherever it is (Synthea lists its own id first)', () => {
    assert.equal(
      of({ system: 'https://github.com/synthetichealth/synthea', value: 'abc' }, typed('MR', 'http://hospital.smarthealthit.org', 'm-1'), typed('SS', 'http://hl7.org/fhir/sid/us-ssn', '999-12-3456')),
      'http://hospital.smarthealthit.org|m-1',
    );
  });

  it('never takes an identifier of the person (SSN, licence, passport, national number) for a record number', () => {
    assert.equal(of(typed('DL', 'urn:oid:2.16.840.1.113883.4.3.25', 'S999'), { system: 'urn:example:clinic:chart', value: 'c-7' }), 'urn:example:clinic:chart|c-7');
    assert.equal(of({ system: 'http://hl7.org/fhir/sid/us-ssn', value: '999-12-3456' }, typed('PPN', 'urn:passport', 'X1'), typed('NNFRA', 'urn:fr:nir', '1')), undefined);
  });

  it('needs a system and a value', () => {
    assert.equal(of({ value: 'no-system' }, { system: 'urn:no-value' }), undefined);
  });
});
