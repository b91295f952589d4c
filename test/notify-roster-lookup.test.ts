import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { personKeysOf, personKeysSql } from '../src/notify/roster-match.js';
import { importRoster } from '../src/notify/rosters.js';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { refreshPlannerStatistics } from '../src/store/statistics.js';
import { BACKENDS, testConfig } from './helpers/backends.js';

/**
 * The roster lookup each notification dispatch makes (roster-match.ts) reaches roster_member through its
 * indexes, never by scanning every member: with 1,000 practices' rosters of 100 a scan cost 3 ms inside
 * the dispatch's write transaction and slowed the intake by about 10 % (bench:notify). SQLite only: its
 * planner follows the statement's join order, which is what the statement's shape must get right;
 * PostgreSQL plans from statistics (the bench analyses the table as autovacuum would). Synthetic rosters:
 * 20 Groups of 100 members named by a hospital's MRN (no real person), as bench:notify writes them.
 */
describe('Roster lookup of a dispatch (sqlite)', () => {
  const store = testConfig('sqlite');
  let tessera: Tessera;
  before(async () => {
    tessera = await createTessera(store.config);
    for (let g = 0; g < 20; g++) {
      const member = Array.from({ length: 100 }, (_, k) => ({ entity: { identifier: { system: 'urn:example:northgate:mrn', value: `H-${g * 100 + k}` } } }));
      await tessera.repo.update({ resourceType: 'Group', id: `roster-${g}`, type: 'person', actual: true, member });
    }
    await tessera.repo.update({ resourceType: 'Group', id: 'by-record', type: 'person', actual: true, member: [{ entity: { reference: 'Patient/p-1' } }] });
  });
  after(async () => {
    await tessera.close();
    store.cleanup();
  });

  const scansOfMembers = async () => {
    const plan = await tessera.repo.sql.query<{ detail: string }>(`EXPLAIN QUERY PLAN ${personKeysSql(3)}`, ['p-1', 'p-2', 'p-3']);
    return plan.map((row) => row.detail).filter((detail) => /^SCAN m\b/.test(detail));
  };

  it('looks members up by index, before and after the planner has statistics', async () => {
    assert.deepEqual(await scansOfMembers(), []);
    await refreshPlannerStatistics(tessera.db);
    assert.deepEqual(await scansOfMembers(), []);
  });

  it('still finds the rosters that list a record by its id', async () => {
    const people = await personKeysOf(tessera.repo, ['p-1']);
    assert.deepEqual([...(people.get('p-1')?.groups ?? [])], ['by-record']);
  });
});

/**
 * PostgreSQL plans the same lookup from statistics, which autovacuum gathers a minute or so after a
 * table grows: a roster imported with `tessera rosters import` is analysed at once, so that the first
 * dispatches after a large import do not scan every member. Synthetic roster: 20,000 MRNs of a practice.
 */
describe('Roster lookup after a large roster import (postgres)', { skip: !BACKENDS.includes('postgres') && 'PostgreSQL not among the backends tested' }, () => {
  it('reaches members through their index at once', async () => {
    const store = testConfig('postgres');
    const tessera = await createTessera(store.config);
    try {
      const { participant } = await addParticipant(tessera.repo, { name: 'Oak Street Practice', mrnSystem: 'urn:example:oak:mrn' });
      await importRoster(tessera.repo, participant.id, Array.from({ length: 20_000 }, (_, k) => `P-${k}`));
      const plan = await tessera.repo.sql.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${personKeysSql(3).replace(/\?/g, () => "'p-1'")}`);
      const lines = plan.map((row) => row['QUERY PLAN']);
      assert.deepEqual(lines.filter((line) => /Seq Scan on roster_member/.test(line)), [], lines.join('\n'));
    } finally {
      await tessera.close();
      store.cleanup();
    }
  });
});
