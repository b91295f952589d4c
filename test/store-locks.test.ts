import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Database } from '../src/store/database.js';
import { lockStripes } from '../src/store/lock-stripes.js';
import { openDatabase } from '../src/store/open.js';
import { BACKENDS, dropTestSchema, testConfig } from './helpers/backends.js';

/**
 * Writer locks (`SqlExecutor.lock`) at the sizes real transactions reach. An import group of 593 Patients
 * takes about 10,000 MPI keys in one transaction; with one advisory lock per key PostgreSQL failed it with
 * "out of shared memory" (its lock table holds 64 slots per connection: 6,400 here). The keys below are
 * MPI-style blocking keys made up in the test.
 */
for (const backend of BACKENDS) describe(`writer locks (${backend})`, () => {
  const store = testConfig(backend);
  let db: Database;

  before(async () => {
    db = await openDatabase(store.config);
  });

  after(async () => {
    await db.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('one transaction takes 30,000 keys, in one call and in many, and commits', async () => {
    const keys = Array.from({ length: 30_000 }, (_, i) => `mpi:fd:person${i}:19800101`);
    const written = await db.transaction(async (tx) => {
      await tx.lock(...keys);
      for (let i = 0; i < 200; i++) await tx.lock(...keys.slice(i * 20, i * 20 + 20).map((k) => `${k}:again`));
      return tx.run("INSERT INTO schema_migrations (version, applied_at) VALUES (100000, 0)");
    });
    assert.equal(written, 1);
    await db.run('DELETE FROM schema_migrations WHERE version = 100000');
  });

  it('a writer asking for a key another transaction holds waits for its commit, whatever else it asks for', async () => {
    const events: string[] = [];
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const first = db.transaction(async (tx) => {
      await tx.lock('mpi:nn:SMT-JN');
      held();
      await released;
      events.push('first commits');
    });
    await holding;
    const second = db.transaction(async (tx) => {
      await tx.lock('mpi:ss:123456789', 'mpi:nn:SMT-JN', 'conditional:Patient?identifier=x');
      events.push('second has its keys');
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    events.push('300 ms later');
    release();
    await Promise.all([first, second]);
    assert.deepEqual(events, ['300 ms later', 'first commits', 'second has its keys']);
  });

  it('stripes are distinct, ascending and the same for every writer', () => {
    const stripes = lockStripes(['b', 'a', 'b', 'mpi:nn:SMT-JN']);
    assert.equal(stripes.length, 3);
    assert.deepEqual(stripes, [...stripes].sort((x, y) => x - y));
    assert.deepEqual(lockStripes(['mpi:nn:SMT-JN']), lockStripes(['mpi:nn:SMT-JN', 'mpi:nn:SMT-JN']));
    assert.notDeepEqual(lockStripes(['test:k1']), lockStripes(['test:k2']), 'the deadlock tests need two stripes');
  });
});
