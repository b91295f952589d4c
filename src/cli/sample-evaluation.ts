import type { TesseraConfig } from '../server/config.js';
import { createTessera } from '../server/tessera.js';
import { loadSample, scoreLinking, type LinkingQuality } from '../mpi/evaluation.js';
import type { LabelledRecord } from '../mpi/labelled-records.js';
import type { MatchModel } from '../mpi/match-model.js';
import { saveModel } from '../mpi/model-store.js';
import { storeAddressOf } from '../store/store-address.js';
import { ModelUpkeep } from '../mpi/model-upkeep.js';
import { PatientLinker } from '../mpi/patient-linker.js';
import type { PosteriorTargets } from '../mpi/posterior-thresholds.js';
import { trainFromIndex, type TrainedModel } from '../mpi/training.js';

export interface SampleEvaluation {
  quality: LinkingQuality;
  /** Records the store refused, with where and why. */
  refused: string[];
  seconds: number;
  /** The model the records were linked with. */
  model: MatchModel;
  /** Learned from the loaded sample itself (unlabelled, as `tessera mpi train` learns from a deployment's index). */
  trained?: TrainedModel;
}

/**
 * A labelled sample loaded into the fresh store `config` names, one record at a time through the normal
 * write path, linked with `model` (stored first, as `tessera mpi train` stores it; the hand priors when
 * absent), scored against the truth; with `train`, a model is then learned from that index as `tessera mpi
 * train` would learn it. Used by `tessera mpi evaluate` and `npm run bench:mpi`.
 */
export async function evaluateSample(
  config: TesseraConfig,
  records: LabelledRecord[],
  options: {
    model?: Parameters<typeof saveModel>[1];
    train?: { maxPairs: number; targets?: PosteriorTargets };
    explainUpTo?: number;
    /** Run the model upkeep of `tessera serve` every this many records (model-upkeep.ts). */
    upkeepEvery?: number;
  } = {},
): Promise<SampleEvaluation> {
  if (options.model) {
    // The linker takes the newest stored model when the store opens: store it first.
    const setup = await createTessera({ ...config, mpi: false }, { auditThread: false });
    await saveModel(setup.db, options.model);
    await setup.close();
  }
  const tessera = await createTessera({ ...config, mpi: true }, { auditThread: false });
  try {
    const linker = tessera.repo.observerOf(PatientLinker) as PatientLinker;
    const upkeep = new ModelUpkeep(tessera.repo, linker, { store: storeAddressOf(config) });
    const loaded = await loadSample(tessera.repo, records, undefined, options.upkeepEvery ? { every: options.upkeepEvery, run: () => upkeep.run() } : undefined);
    const quality = await scoreLinking(tessera.repo, linker.model, loaded.personOf, options.explainUpTo);
    const trained =
      options.train &&
      (await trainFromIndex(tessera.db, linker.model.probabilities, { maxPairs: options.train.maxPairs, targets: options.train.targets, startSystems: linker.model.identifierSystems }));
    return { quality, refused: loaded.refused, seconds: loaded.seconds, model: linker.model, trained };
  } finally {
    await tessera.close();
  }
}
