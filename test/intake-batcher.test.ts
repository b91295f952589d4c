import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { IntakeBatcher } from '../src/ingest/intake-batcher.js';
import { systemRequest } from '../src/ingest/system-request.js';
import { findByCriteria } from '../src/server/crud.js';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import type { Repository } from '../src/store/repository.js';
import { dropTestSchema, testConfig } from './helpers/backends.js';

const admit = (control: string) => `MSH|^~\\&|ADT|ONEBYONE|HIE|TESSERA|20261125120000||ADT^A04|${control}|P|2.5.1\rPID|1||OBO-${control}^^^ONEBYONE^MR||Byone^One||19800101|F`;

/** Counts the transactions begun on a repository (the batcher's group commits) until stopped. */
function countTransactions(repo: Repository): { readonly count: number; stop(): void } {
  const transaction = repo.transaction.bind(repo);
  let count = 0;
  repo.transaction = ((fn: Parameters<typeof transaction>[0]) => {
    count++;
    return transaction(fn);
  }) as typeof repo.transaction;
  return {
    get count() {
      return count;
    },
    stop: () => {
      repo.transaction = transaction;
    },
  };
}

describe('IntakeBatcher', () => {
  const store = testConfig('sqlite');
  let tessera: Tessera;
  after(async () => {
    await tessera?.close();
    await dropTestSchema(store.config);
    store.cleanup();
  });

  it('a sender that submits its next message as soon as its ACK is released is never left waiting', async () => {
    // The ACK's promise resolves inside the drain loop; the next submit runs in a microtask after it.
    // A drain that cleared its flag only later (in a .finally) left that message queued with no drain.
    tessera = await createTessera(store.config);
    await addParticipant(tessera.repo, { name: 'One By One', mrnSystem: 'urn:example:obo:mrn', hl7Facility: 'ONEBYONE' });
    const batcher = new IntakeBatcher(tessera.repo);
    const codes: string[] = [];
    const all = (async () => {
      for (let i = 0; i < 5; i++) codes.push((await batcher.submit(admit(`M${i}`), 'test')).ackCode);
    })();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`stalled after ${codes.length} messages`)), 10_000)));
    try {
      await Promise.race([all, timeout]);
    } finally {
      clearTimeout(timer);
    }
    assert.deepEqual(codes, ['AA', 'AA', 'AA', 'AA', 'AA']);
  });

  it('messages that arrive together share one transaction (group commit), each with its own ACK', async () => {
    const batcher = new IntakeBatcher(tessera.repo);
    const transactions = countTransactions(tessera.repo);
    try {
      // As eight connections' messages read in one turn of the event loop: the batch starts after all of them.
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.submit(admit(`G${i}`), 'test')));
      assert.deepEqual(results.map((r) => r.ackCode), Array(8).fill('AA'));
      assert.equal(new Set(results.map((r) => r.messageId)).size, 8);
      assert.equal(transactions.count, 1);
    } finally {
      transactions.stop();
    }
  });

  it('a batch waits (briefly) for the senders of the last batches, so that senders a moment apart share one commit', async () => {
    // 1 ms in service; here long enough that a slow turn of the event loop on a busy machine does not end the wait.
    const batcher = new IntakeBatcher(tessera.repo, 200);
    const transactions = countTransactions(tessera.repo);
    const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
    try {
      const senders = Array.from({ length: 8 }, (_, i) => `conn-${i}`);
      await Promise.all(senders.map((sender, i) => batcher.submit(admit(`W0-${i}`), 'test', sender)));
      assert.equal(transactions.count, 1);
      // The next round: half the senders at once, the other half two event-loop turns later (as ACK-waiting
      // senders fall into step). A batch started after one turn would hold only the first half.
      const first = senders.slice(0, 4).map((sender, i) => batcher.submit(admit(`W1-${i}`), 'test', sender));
      await turn();
      await turn();
      const second = senders.slice(4).map((sender, i) => batcher.submit(admit(`W1-${i + 4}`), 'test', sender));
      const results = await Promise.all([...first, ...second]);
      assert.deepEqual(results.map((r) => r.ackCode), Array(8).fill('AA'));
      assert.equal(transactions.count, 2, 'the second round in one transaction');
    } finally {
      transactions.stop();
    }
  });

  it('a message that fails after some of its writes is undone alone: the batch is applied again with a savepoint per message', async () => {
    // A write observer that refuses one patient, after that Patient's rows were written in the batch's
    // transaction: without the redo its rows would commit with the other messages.
    tessera.repo.observe({
      types: new Set(['Patient']),
      async written(_repo, resources) {
        if (resources.some((r) => r.resourceType === 'Patient' && r.name?.[0]?.family === 'Refused')) throw new Error('refused by the test observer');
      },
      async deleted() {},
    });
    const batcher = new IntakeBatcher(tessera.repo);
    const transactions = countTransactions(tessera.repo);
    try {
      const texts = ['R1', 'R2', 'R3'].map((c) => (c === 'R2' ? admit(c).replace('Byone^One', 'Refused^One') : admit(c)));
      const results = await Promise.all(texts.map((t) => batcher.submit(t, 'test')));
      assert.deepEqual(results.map((r) => r.ackCode), ['AA', 'AE', 'AA']);
      assert.match(results[1].ack, /refused by the test observer/);
      assert.equal(transactions.count, 2, 'the optimistic attempt, rolled back, then the one with savepoints');
      const stored = async (mrn: string) => (await findByCriteria(tessera.repo, 'Patient', systemRequest({ resourceType: 'Bundle', type: 'batch' }), `identifier=urn:example:obo:mrn|${mrn}`)).length;
      assert.deepEqual([await stored('OBO-R1'), await stored('OBO-R2'), await stored('OBO-R3')], [1, 0, 1]);
      const log = await tessera.db.query<{ control_id: string; status: string }>("SELECT control_id, status FROM message WHERE control_id IN ('R1', 'R2', 'R3') ORDER BY control_id");
      assert.deepEqual(log.map((m) => `${m.control_id}:${m.status}`), ['R1:processed', 'R2:failed', 'R3:processed'], 'each message logged once, from the committed attempt');
    } finally {
      transactions.stop();
    }
  });
});
