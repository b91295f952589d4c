import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Consent, Parameters, ParametersParameter, Patient } from '@medplum/fhirtypes';
import { Random } from '../src/synthetic/random.js';
import { BACKENDS } from './helpers/backends.js';
import { person } from './helpers/people.js';
import { startTestServer, type TestServer } from './helpers/server.js';
import { privacyConsent } from './helpers/governance.js';
import { personRecords } from '../src/engine/request-policy.js';

/**
 * The master patient index's invariants under a seeded random interleaving of everything that changes
 * identities: creates, re-sends with changed demographics, steward accepts and rejects, links, unlinks,
 * merges, unmerges and deletes, all through the HTTP API. After every step:
 * - every live source Patient belongs to exactly one enterprise identity, and that one is active;
 * - every active enterprise has at least one source record and a live golden record linking exactly its
 *   sources (a source linked from two golden records is the failure this guards against);
 * - every golden record of a merged enterprise is inactive and points to where it went;
 * - every patient's Consent (one written every few steps, on a source or golden record) has its rows on
 *   exactly the records of its person as linked now (src/consent/consent-store.ts).
 */

const STEPS = 120;
/** A small population of look-alikes, so that matching, review pairs and conflicts are frequent. */
const PEOPLE = [
  ['Nora', 'Lindqvist', '1980-05-06', 'female'],
  ['Norah', 'Lindqvist', '1980-06-05', 'female'],
  ['Nils', 'Lindqvist', '1980-05-06', 'male'],
  ['Omar', 'Haddad', '1955-11-30', 'male'],
  ['Omar', 'Haddad', '1955-11-03', 'male'],
  ['Omar', 'Haddad-Saleh', '1955-11-30', 'male'],
] as const;
const SOURCES = ['hospital-a', 'clinic-b', 'lab-c'];

const reference = (id: string) => ({ valueReference: { reference: `Patient/${id}` } });

for (const backend of BACKENDS) {
  describe(`master patient index invariants under random operations (${backend})`, () => {
    let s: TestServer;
    before(async () => (s = await startTestServer(backend)));
    after(async () => s?.close());

    async function checkInvariants(step: string): Promise<void> {
      const db = s.tessera.db;
      const live = await db.query<{ id: string; content: string }>("SELECT id, content FROM resource WHERE type = 'Patient' AND deleted = 0");
      const patients = live.map((r) => JSON.parse(r.content) as Patient);
      const golden = patients.filter((p) => p.meta?.tag?.some((t) => t.code === 'golden'));
      const sources = patients.filter((p) => !golden.includes(p));
      const membership = new Map((await db.query<{ patient_id: string; enterprise_id: string }>('SELECT patient_id, enterprise_id FROM mpi_source')).map((r) => [r.patient_id, r.enterprise_id]));
      const status = new Map((await db.query<{ enterprise_id: string; status: string; merged_into: string | null }>('SELECT enterprise_id, status, merged_into FROM mpi_enterprise')).map((r) => [r.enterprise_id, r]));
      assert.deepEqual([...membership.keys()].sort(), sources.map((p) => p.id).sort(), `${step}: the index holds exactly the live source records`);
      for (const [patientId, enterpriseId] of membership) {
        assert.equal(status.get(enterpriseId)?.status, 'active', `${step}: Patient/${patientId} is in active enterprise ${enterpriseId}`);
      }
      const linkedFrom = new Map<string, string[]>();
      for (const g of golden) {
        const enterprise = status.get(g.id as string);
        const links = (g.link ?? []).filter((l) => l.type === 'seealso').map((l) => l.other.reference?.slice('Patient/'.length) as string);
        if (enterprise?.status === 'active') {
          const members = [...membership].filter(([, e]) => e === g.id).map(([p]) => p).sort();
          assert.ok(members.length > 0, `${step}: active enterprise ${g.id} has a source record`);
          assert.deepEqual(links.sort(), members, `${step}: golden ${g.id} links exactly its sources`);
        } else {
          assert.equal(enterprise?.status, 'merged', `${step}: a live golden record ${g.id} is active or merged`);
          assert.equal(g.active, false);
          assert.deepEqual(g.link?.map((l) => [l.type, l.other.reference]), [['replaced-by', `Patient/${enterprise.merged_into}`]]);
        }
        for (const id of links) {
          linkedFrom.set(id, [...(linkedFrom.get(id) ?? []), g.id as string]);
        }
      }
      for (const [id, from] of linkedFrom) {
        assert.equal(from.length, 1, `${step}: Patient/${id} is linked from one golden record, not ${from.join(', ')}`);
      }
      for (const [id, e] of status) {
        if (e.status === 'active') {
          assert.ok(golden.some((g) => g.id === id), `${step}: active enterprise ${id} has a golden record`);
        }
      }
      const consents = await db.query<{ content: string }>("SELECT content FROM resource WHERE type = 'Consent' AND deleted = 0");
      for (const consent of consents.map((r) => JSON.parse(r.content) as Consent)) {
        const named = consent.patient?.reference?.slice('Patient/'.length) as string;
        const rows = (await db.query<{ patient_id: string }>('SELECT DISTINCT patient_id FROM consent_rule WHERE consent_id = ?', [consent.id as string])).map((r) => r.patient_id);
        assert.deepEqual(rows.sort(), (await personRecords(s.tessera.repo, named)).sort(), `${step}: Consent/${consent.id} on Patient/${named} covers exactly its person`);
      }
    }

    it(`keeps every source record in exactly one enterprise, and consents on their person, through ${STEPS} random steps`, async () => {
      const rnd = new Random(20261125);
      const consentRnd = new Random(20261205);
      const sent: { source: string; mrn: string }[] = [];
      const ids = async (sql: string): Promise<string[]> => (await s.tessera.db.query<{ id: string }>(sql)).map((r) => r.id);
      const liveSources = () => ids('SELECT patient_id AS id FROM mpi_source ORDER BY patient_id');
      const enterprises = (state: string) => ids(`SELECT enterprise_id AS id FROM mpi_enterprise WHERE status = '${state}' ORDER BY enterprise_id`);
      const steward = (name: string, parameter: ParametersParameter[]) =>
        s.fhir('POST', `Patient/${name}`, { resourceType: 'Parameters', parameter: [...parameter, { name: 'reason', valueString: 'randomised test' }] } satisfies Parameters);
      const counts = new Map<string, number>();

      for (let step = 0; step < STEPS; step++) {
        const sources = await liveSources();
        const kind = rnd.pick(['create', 'create', 'create', 'resend', 'accept', 'reject', 'link', 'unlink', 'merge', 'unmerge', 'delete']);
        let status = 0;
        if (kind === 'create' || (kind === 'resend' && sent.length)) {
          const target = kind === 'create' ? { source: rnd.pick(SOURCES), mrn: `r-${step}` } : rnd.pick(sent);
          const [given, family, birthDate, gender] = rnd.pick(PEOPLE);
          status = (await s.fhir('POST', 'Patient', person(target.source, target.mrn, given, family, birthDate, { gender }))).status;
          assert.ok([200, 201].includes(status), `step ${step} ${kind}: ${status}`);
          if (kind === 'create') {
            sent.push(target);
          }
        } else if ((kind === 'accept' || kind === 'reject') && sources.length) {
          const queue = await s.fhir('GET', 'Patient/$mpi-review-queue?_count=100');
          const pairs = (queue.body.parameter as ParametersParameter[]).filter((p) => p.name === 'pair');
          if (pairs.length) {
            const pair = rnd.pick(pairs).part ?? [];
            const ref = (name: string) => pair.find((p) => p.name === name)?.valueReference?.reference as string;
            status = (await steward('$mpi-review', [{ name: 'patient', valueReference: { reference: ref('patient') } }, { name: 'other', valueReference: { reference: ref('other') } }, { name: 'decision', valueCode: kind }])).status;
          }
        } else if (kind === 'link' && sources.length > 1) {
          status = (await steward('$mpi-link', [{ name: 'patient', ...reference(rnd.pick(sources)) }, { name: 'target', ...reference(rnd.pick(sources)) }])).status;
        } else if (kind === 'unlink' && sources.length) {
          status = (await steward('$mpi-unlink', [{ name: 'patient', ...reference(rnd.pick(sources)) }])).status;
        } else if (kind === 'merge') {
          const active = await enterprises('active');
          if (active.length > 1) {
            status = (await steward('$mpi-merge', [{ name: 'source', ...reference(rnd.pick(active)) }, { name: 'target', ...reference(rnd.pick(active)) }])).status;
          }
        } else if (kind === 'unmerge') {
          const merged = await enterprises('merged');
          if (merged.length) {
            status = (await steward('$mpi-unmerge', [{ name: 'source', ...reference(rnd.pick(merged)) }])).status;
          }
        } else if (kind === 'delete' && sources.length) {
          status = (await s.fhir('DELETE', `Patient/${rnd.pick(sources)}`)).status;
        }
        if (step % 8 === 7) {
          // A Consent on a live record, source or golden (merged-away ones too), from a generator of its own
          // so that the sequence of identity changes stays the one above.
          const records = await ids("SELECT id FROM resource WHERE type = 'Patient' AND deleted = 0 ORDER BY id");
          const consent = privacyConsent(consentRnd.pick(records), { type: 'permit', provision: [{ type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: 'Organization/elsewhere' } }] }] });
          assert.equal((await s.fhir('POST', 'Consent', consent)).status, 201);
        }
        // 409: a decision the current state refuses (already linked, nothing to unlink, no longer merged).
        assert.ok([0, 200, 201, 409].includes(status), `step ${step} ${kind}: HTTP ${status}`);
        counts.set(`${kind} ${status}`, (counts.get(`${kind} ${status}`) ?? 0) + 1);
        await checkInvariants(`step ${step} (${kind})`);
      }
      // The run exercised every kind of change, not only the ones that are easy to get right.
      for (const kind of ['create 201', 'resend 200', 'accept 200', 'reject 200', 'link 200', 'unlink 200', 'merge 200', 'unmerge 200', 'delete 200']) {
        assert.ok(counts.get(kind), `${kind} happened (${JSON.stringify([...counts])})`);
      }
    });
  });
}
