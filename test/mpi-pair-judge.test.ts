import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Patient } from '@medplum/fhirtypes';
import { compareFeatures } from '../src/mpi/comparison.js';
import { personFeatures, SSN_SYSTEM } from '../src/mpi/features.js';
import { MatchModel, memberConflicts } from '../src/mpi/match-model.js';
import { PairJudge } from '../src/mpi/pair-judge.js';
import type { ClusterMember } from '../src/mpi/reclustering.js';

/**
 * The re-clustering's judge of record pairs (src/mpi/pair-judge.ts) keeps few decisions, to stay within
 * memory over a whole index: whatever it keeps, each answer must be the model's own for that pair. Data:
 * hand-made registration records (synthetic names, addresses and SSNs), the kinds of pairs the linker meets
 * (copies of one person, twins, a steward's rejection).
 */
const model = new MatchModel();

function patient(given: string, ssn: string, extra: Partial<Patient> = {}): Patient {
  return {
    resourceType: 'Patient',
    name: [{ given: [given], family: 'Okafor' }],
    birthDate: '1984-03-17',
    gender: 'female',
    identifier: [{ system: SSN_SYSTEM, value: ssn }],
    address: [{ line: ['40 Harbor Road'], city: 'Salem', postalCode: '01970' }],
    telecom: [{ system: 'phone', value: '978-555-0142' }],
    ...extra,
  };
}

const member = (patientId: string, p: Patient): ClusterMember => ({ patientId, features: personFeatures(p) });
const judgeOf = (rejected: string[] = []) => new PairJudge(model, undefined, new Map(), new Set(rejected));

describe('MPI pair judge', () => {
  const ada = member('p-1', patient('Adaeze', '301-22-4816'));
  const adaAgain = member('p-2', patient('Adaeze', '301-22-4816', { telecom: [] }));
  const twin = member('p-3', patient('Chiamaka', '412-37-5590'));

  it("links copies of one person and finds nothing forbidding them, as the model decides", () => {
    const judge = judgeOf();
    const decision = model.decide(compareFeatures(ada.features, adaAgain.features));
    assert.equal(decision.outcome, 'auto-link');
    assert.deepEqual(judge.edge(ada, adaAgain), { a: 'p-1', b: 'p-2', score: decision.score });
    assert.deepEqual(judge.conflicts(ada, adaAgain), []);
    assert.deepEqual(judge.decide(adaAgain, ada), decision);
  });

  it('gives a twin no link and the contradictions the model sees, in either order and when asked again', () => {
    const judge = judgeOf();
    const expected = memberConflicts(compareFeatures(ada.features, twin.features));
    assert.ok(expected.length > 0, 'the twins differ in first name and SSN');
    assert.equal(judge.edge(ada, twin), undefined);
    assert.deepEqual(judge.conflicts(ada, twin), expected);
    assert.deepEqual(judge.conflicts(twin, ada), expected);
    assert.deepEqual(judge.conflicts(ada, twin), expected);
  });

  it("holds a steward's rejection over a pair the model would link", () => {
    const judge = judgeOf(['p-1|p-2']);
    assert.equal(judge.edge(ada, adaAgain), undefined);
    assert.deepEqual(judge.conflicts(adaAgain, ada), ['a data steward ruled them apart']);
  });

  it('answers as the model does past the decisions it keeps (12,090 pairs of 156 records)', () => {
    // Two people's copies, interleaved: every pair is either one person's (a link) or two people's.
    const records = Array.from({ length: 156 }, (_, i) => member(`r-${String(i).padStart(3, '0')}`, i % 2 ? patient('Chiamaka', '412-37-5590') : patient('Adaeze', '301-22-4816')));
    const judge = judgeOf();
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < records.length; i++) {
        for (let j = i + 1; j < records.length; j++) {
          const samePerson = i % 2 === j % 2;
          assert.equal(judge.decide(records[i], records[j]).outcome === 'auto-link', samePerson, `${i}-${j}`);
          assert.equal(judge.conflicts(records[j], records[i]).length === 0, samePerson, `${i}-${j}`);
        }
      }
    }
  });
});
