import type { Patient } from '@medplum/fhirtypes';
import type { Repository } from '../store/repository.js';
import { learnAndStore, MIN_RECORDS_TO_LEARN } from './learn-before-rebuild.js';
import type { StoreAddress } from '../store/store-address.js';
import { learnOffThread, LearningStopped } from './model-learner.js';
import { latestModel, matchModelOf, type StoredModel } from './model-store.js';
import type { PatientLinker } from './patient-linker.js';

/** Records matched again per write transaction. */
const CHUNK = 100;

export interface UpkeepResult {
  /** A model learned by this run (from `records` source records) or found stored by another process, now in force. */
  adopted?: { version: number; records?: number; learnedHere: boolean };
  /** Records of the review queue matched again under it. */
  rematched: number;
  /** Of them, now linked to an identity they were only a question about before. */
  linked: number;
  /** Time spent learning and matching again, seconds. */
  learnSeconds?: number;
  rematchSeconds?: number;
}

/**
 * The match model follows the data as the index grows, with no operator step (decision 0053). The hand
 * priors know nothing of a population; a model learned from the index does (docs/matching.md). So, when
 * the index first holds MIN_RECORDS_TO_LEARN source records, and again each time it has doubled since the
 * model in force was learned, the model is learned from it and put in force; then every record the
 * review queue asks about and that is alone in its identity is matched again under that model: pairs the
 * previous model could only ask a steward about are linked where the data now says they are one person,
 * and questions it no longer finds uncertain leave the queue. Identities already formed are not taken
 * apart here (that is `tessera mpi rebuild`'s re-clustering).
 *
 * Run by `tessera serve` on a timer and by `tessera mpi evaluate` between records. Several processes on
 * one PostgreSQL: each adopts the newest stored model; two learning at once store two models, the newer
 * of which is kept by all.
 */
export class ModelUpkeep {
  constructor(
    private readonly repo: Repository,
    private readonly linker: PatientLinker,
    private readonly options: {
      /** The store, for the learner thread's own connection (model-learner.ts); without it, learned on this thread. */
      store?: StoreAddress;
      /** Source records from which the first model is learned (tests use fewer than a deployment). */
      minRecords?: number;
    } = {},
  ) {}

  /** The background runs since start(): their timer, and the signal that ends their learning. */
  private background?: { timer?: NodeJS.Timeout; stopping: AbortController };
  /** The background run in progress, if any. */
  private running: Promise<unknown> = Promise.resolve();
  /** Ends a learning of a run called directly (`run()`); renewed by each stop(). */
  private direct = new AbortController();

  /**
   * Runs every `intervalMs` in the background (`tessera serve`), one run at a time; a failed run is tried
   * again at the next. Each start has its own timer and signal: a start while an earlier stop() still
   * waits for its run neither inherits that stop's signal nor revives its timer.
   */
  start(intervalMs: number, onError: (err: unknown) => void, onAdopted: (result: UpkeepResult) => void = () => {}): void {
    if (this.background) return;
    const background: NonNullable<ModelUpkeep['background']> = { stopping: new AbortController() };
    this.background = background;
    const next = () => {
      background.timer = setTimeout(() => {
        this.running = this.run(background.stopping.signal)
          .then((result) => result.adopted && onAdopted(result))
          // Only the learning that stop() ended is not a failure.
          .catch((err) => (err instanceof LearningStopped && background.stopping.signal.aborted) || onError(err))
          .finally(() => this.background === background && next());
      }, intervalMs).unref();
    };
    next();
  }

  /**
   * Stops the timer and ends a run in progress: a learning on its thread is ended at once (nothing is
   * stored; the next server learns it again), a background one's and a direct run()'s alike. A rematch
   * under a model already in force is waited for: nothing would redo it, since the next process starts
   * with that model.
   */
  async stop(): Promise<void> {
    const background = this.background;
    this.background = undefined;
    clearTimeout(background?.timer);
    background?.stopping.abort();
    const direct = this.direct;
    this.direct = new AbortController(); // a run called after this stop learns again
    direct.abort();
    await this.running;
  }

  /** Learns a model when the index has grown enough, puts the newest stored model in force and matches the review queue's records again under it. */
  async run(signal: AbortSignal = this.direct.signal): Promise<UpkeepResult> {
    const sql = this.repo.sql;
    let stored = await latestModel(sql);
    let learnedHere = false;
    const [{ n }] = await sql.query<{ n: number }>('SELECT COUNT(*) AS n FROM mpi_source');
    const started = performance.now();
    if (learningDue(Number(n), stored, this.options.minRecords)) {
      const { store } = this.options;
      const learned = await learnAndStore(sql, { start: this.linker.model, targets: stored?.targets, records: Number(n) }, store && ((request) => learnOffThread({ store, ...request }, signal)));
      if (learned.stored) {
        stored = await latestModel(sql);
        learnedHere = true;
      }
    }
    if (!stored || stored.version === this.linker.model.version) {
      return { rematched: 0, linked: 0 };
    }
    this.linker.adopt(matchModelOf(stored));
    const learnt = performance.now();
    const { rematched, linked } = await this.rematchQuestioned();
    const seconds = (from: number, to: number) => Math.round(to - from) / 1000;
    return { adopted: { version: stored.version, records: stored.records, learnedHere }, rematched, linked, learnSeconds: seconds(started, learnt), rematchSeconds: seconds(learnt, performance.now()) };
  }

  /** Every record of an open question that is alone in its identity, matched again as a rebuild matches it. */
  private async rematchQuestioned(): Promise<{ rematched: number; linked: number }> {
    const rows = await this.repo.sql.query<{ patient_id: string }>(
      // Driven by the open pairs (mpi_pair_status), not by every record of the index.
      `SELECT s.patient_id FROM (SELECT patient_a AS id FROM mpi_pair WHERE status = 'open' UNION SELECT patient_b FROM mpi_pair WHERE status = 'open') q
         JOIN mpi_source s ON s.patient_id = q.id
        WHERE NOT EXISTS (SELECT 1 FROM mpi_source o WHERE o.enterprise_id = s.enterprise_id AND o.patient_id <> s.patient_id)
        ORDER BY s.patient_id`,
    );
    const ids = rows.map((r) => r.patient_id);
    let linked = 0;
    for (let i = 0; i < ids.length; i += CHUNK) {
      const chunk = ids.slice(i, i + CHUNK);
      await this.repo.transaction(async (tx) => {
        const patients = await patientsById(tx, chunk);
        await this.linker.written(tx, patients);
        const placeholders = chunk.map(() => '?').join(', ');
        const [{ joined }] = await tx.sql.query<{ joined: number }>(
          `SELECT COUNT(*) AS joined FROM mpi_source s WHERE s.patient_id IN (${placeholders})
             AND EXISTS (SELECT 1 FROM mpi_source o WHERE o.enterprise_id = s.enterprise_id AND o.patient_id <> s.patient_id)`,
          chunk,
        );
        linked += Number(joined);
      });
    }
    return { rematched: ids.length, linked };
  }
}

/**
 * Whether the index has grown enough to learn from again: from MIN_RECORDS_TO_LEARN source records on,
 * when no model learned from a counted index is in force, or the index has doubled since. A model stored
 * without its count (trained before model upkeep) stays until the next rebuild or training.
 */
export function learningDue(records: number, stored: Pick<StoredModel, 'records'> | undefined, minRecords = MIN_RECORDS_TO_LEARN): boolean {
  if (records < minRecords) return false;
  if (!stored) return true;
  return stored.records !== undefined && records >= 2 * stored.records;
}

async function patientsById(repo: Repository, ids: string[]): Promise<Patient[]> {
  const rows = await repo.sql.query<{ content: string }>(
    `SELECT content FROM resource WHERE type = 'Patient' AND deleted = 0 AND id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  );
  return rows.map((r) => JSON.parse(r.content) as Patient);
}
