import type { Patient } from '@medplum/fhirtypes';
import { isGolden } from '../../src/mpi/source-identity.js';
import type { WriteObserver } from '../../src/store/repository.js';

/**
 * A write observer that makes two transactions deadlock for real, as two transactions' conditional
 * writes and patient-index keys can: the first write of a source Patient of family `first` takes lock
 * k1, waits until the one of family `second` has taken k2, then asks for k2; `second` asks for k1 200 ms
 * later, so `first`'s transaction, waiting first, is the one PostgreSQL ends. Each family does this once:
 * the transaction run again goes through. Golden records (the patient index's own Patients) are ignored.
 */
export function crossedLocks(first: string, second: string): WriteObserver {
  const took = new Map([first, second].map((family) => [family, deferred()]));
  const done = new Set<string>();
  return {
    types: new Set(['Patient']),
    async written(repo, resources) {
      const family = (resources as Patient[]).find((r) => !isGolden(r))?.name?.[0]?.family;
      if (!family || !took.has(family) || done.has(family)) return;
      done.add(family);
      const [mine, theirs] = family === first ? ['test:k1', 'test:k2'] : ['test:k2', 'test:k1'];
      await repo.sql.lock(mine);
      took.get(family)?.resolve();
      // Bounded: should the other transaction never get here, the test fails instead of hanging.
      const other = took.get(family === first ? second : first)?.promise;
      await Promise.race([other, new Promise((_, reject) => setTimeout(() => reject(new Error('the other transaction never took its lock')), 5000).unref())]);
      if (family === second) await new Promise((resolve) => setTimeout(resolve, 200));
      await repo.sql.lock(theirs);
    },
    async deleted() {},
  };
}

/** A promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
