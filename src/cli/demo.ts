import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BundleGroupWriter, type BundleOutcome } from '../ingest/bundle-group-writer.js';
import type { Tessera } from '../server/tessera.js';
import { createClient } from '../security/clients.js';
import { setClearance } from '../consent/clearance.js';
import { refreshPlannerStatistics } from '../store/statistics.js';
import { directoryBundle, patientBundles } from '../synthetic/community.js';
import { createProgressBar } from './progress.js';

export const DEMO_PATIENTS = 250;
const DEMO_SEED = 20261125;

/**
 * On first start, loads the demo community through the normal transaction path and registers an admin
 * client whose credentials go to a file (mode 0600) in the data directory, never to the logs.
 */
export async function ensureDemo(tessera: Tessera): Promise<{ loaded: boolean; credentialsFile: string }> {
  const credentialsFile = join(tessera.config.dataDir, 'admin-client.json');
  const done = await tessera.db.query<{ value: string }>("SELECT value FROM setting WHERE key = 'demo.loaded'");
  if (done.length) {
    return { loaded: false, credentialsFile };
  }
  const writer = new BundleGroupWriter(tessera.repo);
  const failures: string[] = [];
  const onOutcome = (outcome: BundleOutcome) => {
    if ('error' in outcome) failures.push(outcome.error.message);
  };
  await writer.add(directoryBundle(DEMO_SEED), onOutcome);
  const bar = createProgressBar('Loading demo community', DEMO_PATIENTS);
  let resources = 0;
  let n = 0;
  for (const bundle of patientBundles({ seed: DEMO_SEED, patients: DEMO_PATIENTS })) {
    await writer.add(bundle, onOutcome);
    resources += bundle.entry?.length ?? 0;
    bar.update(++n, resources);
  }
  await writer.flush();
  bar.stop();
  if (failures.length) {
    throw new Error(`The demo community did not load: ${failures[0]}`);
  }
  await refreshPlannerStatistics(tessera.db);
  const client = await createClient(tessera.db, { name: 'demo-admin', scope: 'system/*.cruds' });
  await setClearance(tessera.db, `client:${client.clientId}`, ['*']); // the operator's client reads sensitive data too
  const tokenUrl = `${tessera.config.baseUrl ?? `http://localhost:${tessera.config.port}`}/oauth/token`;
  writeFileSync(credentialsFile, JSON.stringify({ ...client, tokenUrl }, null, 2), { mode: 0o600 });
  chmodSync(credentialsFile, 0o600);
  await tessera.db.run("INSERT INTO setting (key, value) VALUES ('demo.loaded', ?)", [new Date().toISOString()]);
  return { loaded: true, credentialsFile };
}
