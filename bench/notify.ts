/**
 * npm run bench:notify [-- --subscriptions 1000 --roster 100 --messages 2000 --backend sqlite|postgres --delivery on|off --first without|with --paired 50 | --paired 0 --rounds 3 --processes 1]
 *
 * Sustained ADT^A01 intake over MLLP (one sender, one message at a time, as a hospital's interface
 * engine sends) into a store with `subscriptions` admission subscriptions, each with a roster Group of
 * `roster` patients (total subscriptions x roster), and the same intake into a store without
 * subscriptions. By default paired (`--paired 50`, see `paired`): both stores at once, the intake
 * alternating between them in blocks of 50. With `--paired 0`, separate runs: an unmeasured warm-up run,
 * then `--rounds` rounds of alternating order (a run gains from the runs before it in the process), and
 * CPU figures. Half the admitted patients are on one roster. Reports: intake
 * rate with and without, and the latency from the ACK of a message to its notification's arrival at a real HTTP receiver (p50,
 * p95). Delivery runs with the default settings (workers woken by each commit, polling every 200 ms as
 * the fallback). `--delivery off` starts no delivery workers (the outbox is still written): intake with
 * subscriptions then pays for the outbox alone, not for delivery sharing the process. Also reports the
 * process's CPU time (all threads) per message over the intake and its deliveries: far less disturbed
 * by other work on a shared machine than the rates. `--cpu-prof DIR` writes a CPU profile of that phase
 * of each run (`DIR/<backend>-with.cpuprofile`, `-without`; bench/profile-summary.ts sums one). Synthetic
 * data only (MRNs and names generated here). `--processes N` (PostgreSQL, delivery on) also runs N - 1
 * `tessera serve` processes on the store, in both runs of a round: their workers share the delivery with
 * the intake's process (leases, decision 0037); the CPU figures then add theirs (unpaired only).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { addParticipant } from '../src/participants/participants.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { subscription } from '../test/helpers/subscriptions.js';
import { MllpSender } from '../test/helpers/mllp.js';
import { dropTestSchema, testConfig } from '../test/helpers/backends.js';
import { arg } from './args.js';
import { startServerProcess, type ServerProcess } from './server-process.js';
import { profilePhase } from './cpu-profile.js';
import { countStatements, totalOf } from './statement-count.js';
import { median } from './stats.js';

const SUBSCRIPTIONS = Number(arg('subscriptions', '1000'));
const ROSTER = Number(arg('roster', '100'));
const MESSAGES = Number(arg('messages', '2000'));
const BACKEND = arg('backend', 'sqlite') as 'sqlite' | 'postgres';
const DELIVERY = arg('delivery', 'on') !== 'off';
const PROFILE_DIR = process.argv.includes('--cpu-prof') ? arg('cpu-prof', '') : undefined;
const PROCESSES = Number(arg('processes', '1'));
/** `--statements N`: also print the N statement texts the with-run sent most, per notification (PostgreSQL). */
const STATEMENT_TOP = Number(arg('statements', '0'));
if (!Number.isInteger(PROCESSES) || PROCESSES < 1 || (PROCESSES > 1 && (BACKEND !== 'postgres' || !DELIVERY))) {
  throw new Error(`--processes ${arg('processes', '1')}: a whole number from 1; above 1 only with --backend postgres and delivery on (SQLite's writers are one process)`);
}

const adt = (i: number) =>
  [
    `MSH|^~\\&|EPIC|NORTHGATE|HIE|TESSERA|20261101083000||ADT^A01^ADT_A01|B-${i}|P|2.5.1`,
    'EVN|A01|20261101082900',
    `PID|1||H-${i}^^^NORTHGATE^MR||Benchperson${i}^Alex||19700101|F`,
    `PV1|1|I|4E^412^B^NORTHGATE||||1234^Carter^Ann|||MED|||||||||V-${i}^^^NORTHGATE^VN`,
  ].join('\r');

/**
 * A Tessera with its own store, MLLP listener and HTTP receiver of its notifications, with or without
 * the subscriptions; `send` posts ADTs `from` .. `to` - 1 one at a time (each after the last one's ACK).
 */
async function openIntake(withSubscriptions: boolean) {
  const store = testConfig(BACKEND);
  const tessera = await createTessera({ ...store.config, mllpPort: 0 }, { auditThread: true });
  await tessera.app.listen({ port: 0, host: '127.0.0.1' });
  await addParticipant(tessera.repo, { name: 'Northgate', mrnSystem: 'urn:example:northgate:mrn', hl7Facility: 'NORTHGATE' });
  const ackAt = new Map<string, number>();
  const latencies: number[] = [];
  // A notification can reach the receiver before the bench has taken its message's ACK (another process
  // delivered it at once): counted as 0 ms when the ACK comes, not lost from the count.
  const beforeAck = new Set<string>();
  const receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const now = Date.now();
      const bundle = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const e of bundle.entry.slice(1)) {
        const visit = e.resource?.identifier?.[0]?.value as string | undefined;
        const at = visit ? ackAt.get(visit) : undefined;
        if (at) latencies.push(now - at);
        else if (visit) beforeAck.add(visit);
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  if (withSubscriptions) {
    const practice = (await addParticipant(tessera.repo, { name: 'Panel practices', mrnSystem: 'urn:example:panel:mrn', scope: 'system/*.rs' })).participant;
    for (let s = 0; s < SUBSCRIPTIONS; s++) {
      // Roster s holds hospital MRNs H-(s*ROSTER) ... ; the admitted patients 0, 2, 4 ... are on the first rosters.
      const member = Array.from({ length: ROSTER }, (_, k) => ({ entity: { identifier: { system: 'urn:example:northgate:mrn', value: `H-${(s * ROSTER + k) * 2}` } } }));
      await tessera.repo.update({ resourceType: 'Group', id: `bench-${s}`, type: 'person', actual: true, member });
      await tessera.repo.create(subscription({ topic: 'admission', filter: `Encounter?patient:in=Group/bench-${s}`, endpoint: `${url}/s${s}`, payload: 'full-resource', organization: practice.organizationId }));
    }
  }
  // PostgreSQL's autovacuum analyses the roster index within a minute of its loading; the intake starts at
  // once, so the bench does it first (without statistics the roster lookup scans all 100,000 members).
  // That table alone: the others stay as in earlier runs, so that only the roster lookup's plan changes.
  if (withSubscriptions && BACKEND === 'postgres') await tessera.db.exec('ANALYZE roster_member');
  if (DELIVERY) await tessera.startNotifications();
  // Started after the subscriptions are written, as the intake's process is (their first rounds find them).
  const others: ServerProcess[] = [];
  for (let p = 1; p < PROCESSES; p++) others.push(await startServerProcess(store.config));
  const sender = new MllpSender((await tessera.startMllp()) as number);
  return {
    tessera,
    others,
    latencies,
    /** Sends ADTs `from` .. `to` - 1; returns the seconds from the first send to the last ACK. */
    async send(from: number, to: number): Promise<number> {
      const start = Date.now();
      for (let i = from; i < to; i++) {
        await sender.send(adt(i));
        ackAt.set(`V-${i}`, Date.now());
        if (beforeAck.delete(`V-${i}`)) latencies.push(0);
      }
      return (Date.now() - start) / 1000;
    },
    /** Waits (at most 120 s) until the notifications of the first `messages` ADTs have all arrived. */
    async delivered(messages: number): Promise<void> {
      const expected = withSubscriptions && DELIVERY ? Math.min(Math.ceil(messages / 2), SUBSCRIPTIONS * ROSTER) : 0;
      const deadline = Date.now() + 120_000;
      while (latencies.length < expected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    },
    async close(): Promise<void> {
      await sender.close();
      for (const other of others) await other.stop();
      await tessera.close();
      receiver.close();
      await dropTestSchema(store.config);
      store.cleanup();
    },
  };
}

async function run(withSubscriptions: boolean, messages = MESSAGES): Promise<{ rate: number; latencies: number[]; cpuMsPerMessage: number; mainCpuMsPerMessage: number; transactionsPerMessage: number; statementsPerMessage: number; statements: Map<string, number> }> {
  const intake = await openIntake(withSubscriptions);
  const othersCpu = async () => (await Promise.all(intake.others.map((o) => o.cpuMs()))).reduce((sum, c) => sum + c.total, 0);
  const stopProfile = await profilePhase(PROFILE_DIR, `${BACKEND}-${withSubscriptions ? 'with' : 'without'}`);
  const othersCpuStart = await othersCpu();
  const cpuStart = process.cpuUsage();
  const mainStart = mainThreadCpuMs();
  const transactions = countTransactions(intake.tessera);
  const statementCount = countStatements();
  const seconds = await intake.send(0, messages);
  await intake.delivered(messages);
  const cpu = process.cpuUsage(cpuStart);
  const mainCpu = mainThreadCpuMs() - mainStart;
  const otherCpuMs = (await othersCpu()) - othersCpuStart;
  const transactionCount = transactions.stop();
  const statements = statementCount.stop();
  await stopProfile();
  await intake.close();
  const latencies = intake.latencies.sort((a, b) => a - b);
  return { rate: messages / seconds, latencies, cpuMsPerMessage: ((cpu.user + cpu.system) / 1000 + otherCpuMs) / messages, mainCpuMsPerMessage: mainCpu / messages, transactionsPerMessage: transactionCount / messages, statementsPerMessage: totalOf(statements) / messages, statements };
}

/**
 * CPU time of this process's main thread so far, ms (Linux /proc, 10 ms ticks): the event loop that
 * acknowledges each message, and that delivery shares; 0 elsewhere.
 */
function mainThreadCpuMs(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/** Counts the write transactions of the store's main connection(s) until `stop` (not the audit thread's). */
function countTransactions(tessera: Tessera): { stop(): number } {
  const db = tessera.repo.db;
  const original = db.transaction;
  let count = 0;
  db.transaction = function (this: typeof db, fn) {
    count++;
    return original.call(this, fn);
  } as typeof db.transaction;
  return {
    stop() {
      db.transaction = original;
      return count;
    },
  };
}

const pct = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

/**
 * `--paired B`: both stores open at once in this process, the intake alternating between them in blocks
 * of B messages (each pair of blocks in the other order than the last), so that the machine's drift falls
 * on both alike (the rounds of separate runs differed by as much as the effect measured). A block's time
 * runs from its first send to its last ACK; after each block of the store with subscriptions the bench
 * waits, untimed, until that block's notifications have arrived, so that its delivery does not run into
 * the other store's next block (what it still had to deliver after the block's last ACK, at most the
 * ACK-to-receiver latency of its last messages, is thereby left out of its time). CPU is not reported:
 * both stores share the process.
 */
async function paired(block: number): Promise<void> {
  // Opened in `--first` order: in a run with two stores without subscriptions (an A/A run) the one opened
  // second took its blocks 4-8 % faster, so a figure is read with the other order's.
  const withFirst = arg('first', 'without') === 'with';
  const opened = [await openIntake(withFirst), await openIntake(!withFirst)];
  const intakes = withFirst ? { with: opened[0], without: opened[1] } : { without: opened[0], with: opened[1] };
  const seconds = { without: 0, with: 0 };
  const warmUp = Math.min(block, Math.ceil(MESSAGES / 10));
  for (const side of ['without', 'with'] as const) await intakes[side].send(0, warmUp);
  await intakes.with.delivered(warmUp);
  const measuredFrom = intakes.with.latencies.length;
  let sent = warmUp;
  for (let b = 0; sent < warmUp + MESSAGES; b++) {
    const to = Math.min(sent + block, warmUp + MESSAGES);
    for (const side of b % 2 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
      seconds[side] += await intakes[side].send(sent, to);
      if (side === 'with') await intakes.with.delivered(to);
    }
    sent = to;
  }
  const latencies = intakes.with.latencies.slice(measuredFrom).sort((a, b) => a - b);
  for (const intake of Object.values(intakes)) await intake.close();
  const rate = (side: 'with' | 'without') => MESSAGES / seconds[side];
  process.stdout.write(
    `${BACKEND}, paired in blocks of ${block}, the store ${withFirst ? 'with' : 'without'} subscriptions opened first: ${MESSAGES} ADT^A01 into each store (after ${warmUp} unmeasured), ${SUBSCRIPTIONS} subscriptions x ${ROSTER} rostered = ${SUBSCRIPTIONS * ROSTER} patients\n` +
      `intake without subscriptions ${rate('without').toFixed(1)} msg/s, with ${rate('with').toFixed(1)} msg/s (${((rate('with') / rate('without') - 1) * 100).toFixed(1)} %)\n` +
      (DELIVERY
        ? `notifications received ${latencies.length}; ACK to receiver p50 ${pct(latencies, 0.5)} ms, p95 ${pct(latencies, 0.95)} ms, max ${latencies.at(-1)} ms\n`
        : 'delivery off: outbox written, nothing delivered\n'),
  );
}

// Paired unless asked otherwise; several processes run in separate runs only.
const PAIRED = Number(arg('paired', PROCESSES > 1 ? '0' : '50'));
if (PAIRED > 0) {
  if (PROCESSES > 1) throw new Error('--paired runs one Tessera process per store: add --paired 0');
  await paired(PAIRED);
  process.exit(0);
}
type Run = Awaited<ReturnType<typeof run>>;
// A run gains from the runs before it in the process (JIT, caches): an unmeasured warm-up run first, then
// `--rounds` rounds in alternating order (without/with, with/without, ...; `--first with` starts with the
// store with subscriptions), each figure the median of its runs, the change the median of the rounds'.
const WITH_FIRST = arg('first', 'without') === 'with';
const ROUNDS = Number(arg('rounds', '3'));
await run(false, Math.ceil(MESSAGES / 4));
const runs: { without: Run; with: Run }[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const withFirst = (round % 2 === 1) !== WITH_FIRST;
  const first = await run(withFirst);
  const second = await run(!withFirst);
  runs.push(withFirst ? { with: first, without: second } : { without: first, with: second });
}
const of = (side: 'with' | 'without', f: (r: Run) => number) => median(runs.map((r) => f(r[side])));
const without = { rate: of('without', (r) => r.rate), cpuMsPerMessage: of('without', (r) => r.cpuMsPerMessage), mainCpuMsPerMessage: of('without', (r) => r.mainCpuMsPerMessage), transactionsPerMessage: of('without', (r) => r.transactionsPerMessage), statementsPerMessage: of('without', (r) => r.statementsPerMessage) };
const withSubs = {
  rate: of('with', (r) => r.rate),
  cpuMsPerMessage: of('with', (r) => r.cpuMsPerMessage),
  mainCpuMsPerMessage: of('with', (r) => r.mainCpuMsPerMessage),
  transactionsPerMessage: of('with', (r) => r.transactionsPerMessage),
  statementsPerMessage: of('with', (r) => r.statementsPerMessage),
  latencies: runs.flatMap((r) => r.with.latencies).sort((a, b) => a - b),
};
const change = median(runs.map((r) => r.with.rate / r.without.rate - 1));
process.stdout.write(
  `${BACKEND}: ${MESSAGES} ADT^A01, ${SUBSCRIPTIONS} subscriptions x ${ROSTER} rostered = ${SUBSCRIPTIONS * ROSTER} patients; ${PROCESSES} Tessera process${PROCESSES > 1 ? 'es' : ''}\n` +
    `intake without subscriptions ${without.rate.toFixed(0)} msg/s, with ${withSubs.rate.toFixed(0)} msg/s (median of the rounds' changes ${(change * 100).toFixed(1)} %; ${ROUNDS} rounds)\n` +
    `process CPU per message (all threads${PROCESSES > 1 ? ' of every process' : ''}, until the last notification) without ${without.cpuMsPerMessage.toFixed(2)} ms, with ${withSubs.cpuMsPerMessage.toFixed(2)} ms\n` +
    `main thread CPU per message without ${without.mainCpuMsPerMessage.toFixed(2)} ms, with ${withSubs.mainCpuMsPerMessage.toFixed(2)} ms\n` +
    `write transactions per message without ${without.transactionsPerMessage.toFixed(2)}, with ${withSubs.transactionsPerMessage.toFixed(2)}\n` +
    (BACKEND === 'postgres' ? `PostgreSQL statements per message (main thread) without ${without.statementsPerMessage.toFixed(2)}, with ${withSubs.statementsPerMessage.toFixed(2)}\n` : '') +
    (DELIVERY
      ? `notifications received ${withSubs.latencies.length}; ACK to receiver p50 ${pct(withSubs.latencies, 0.5)} ms, p95 ${pct(withSubs.latencies, 0.95)} ms, max ${withSubs.latencies.at(-1)} ms\n`
      : 'delivery off: outbox written, nothing delivered\n'),
);
if (STATEMENT_TOP > 0 && BACKEND === 'postgres') {
  // The last round's with-run, against its without-run: what subscriptions add, per notification received.
  const last = runs[runs.length - 1];
  const notifications = Math.max(1, last.with.latencies.length);
  const added = new Map([...last.with.statements].map(([text, n]) => [text, (n - (last.without.statements.get(text) ?? 0)) / notifications]));
  process.stdout.write(`statements added per notification (last round; ${notifications} notifications): ${[...added.values()].reduce((a, b) => a + b, 0).toFixed(1)}\n`);
  for (const [text, n] of [...added].filter(([, n]) => Math.abs(n) >= 0.05).sort((a, b) => b[1] - a[1]).slice(0, STATEMENT_TOP)) process.stdout.write(`${n.toFixed(2).padStart(7)}  ${text}\n`);
}
