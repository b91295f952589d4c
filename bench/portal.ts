/**
 * npm run bench:portal [-- --backends sqlite,postgres --encounters 260 --runs 7]
 *
 * First load of a patient page in the portal, measured in the browser (Debian Chromium driven by
 * playwright-core): a clinician signed in opens the page of one patient with about 2,000 resources
 * (the demo community's generator, one person with many encounters); the time runs from the navigation
 * to the page drawn (trend chart on its canvas and every section rendered), and includes fetching the
 * merged record (`$merged-record`) and the source Patients with the user's token through the one access
 * policy and the audit write. Target: < 1 s.
 */
import { arg } from './args.js';
import { benchConfig } from './config.js';
import { fmt, percentiles } from './stats.js';
import { COMMIT as commit, MACHINE as machine } from './environment.js';
import { createClient } from '../src/security/clients.js';
import { createTessera } from '../src/server/tessera.js';
import { ORGANIZATIONS } from '../src/synthetic/community.js';
import { addUser } from '../src/users/user-directory.js';
import { getToken } from '../test/helpers/server.js';
import { launchBrowser, openPage, signIn } from '../test/helpers/portal-browser.js';
import { firstLoad, seedLargePatient } from '../test/helpers/portal-load.js';
import { dropTestSchema } from '../test/helpers/backends.js';

const BACKENDS = arg('backends', 'sqlite').split(',') as ('sqlite' | 'postgres')[];
const ENCOUNTERS = Number(arg('encounters', '260'));
const RUNS = Number(arg('runs', '7'));
const PASSWORD = 'bench portal password';

for (const backend of BACKENDS) {
  const { config, cleanup } = benchConfig(backend);
  config.mllpPort = -1;
  const tessera = await createTessera(config);
  const url = await tessera.app.listen({ port: 0, host: '127.0.0.1' });
  const browser = await launchBrowser();
  try {
    const admin = await createClient(tessera.db, { name: 'bench-admin', scope: 'system/*.cruds' });
    const token = await getToken(url, admin.clientId, admin.clientSecret as string);
    const { pageId, resources } = await seedLargePatient(url, token, ENCOUNTERS);
    await addUser(tessera.repo, { name: 'Bench Clinician', email: 'bench@example.org', role: 'clinician', organization: ORGANIZATIONS[0].id, password: PASSWORD });

    const { page } = await openPage(browser);
    await signIn(page, url, 'bench@example.org', PASSWORD, 'TREAT');
    const times: number[] = [];
    const arrived: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      const { total, arrived: at } = await firstLoad(page, pageId);
      // the first warms the server's caches (model, statements), like any first visitor before
      if (i > 0) (times.push(total), arrived.push(at));
    }
    // The share of the server: the same merged record fetched by Node with the admin token.
    const server: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t0 = performance.now();
      await (await fetch(`${url}/fhir/Patient/${pageId}/$merged-record?_count=5000`, { headers: { authorization: `Bearer ${token}` } })).text();
      server.push(performance.now() - t0);
    }
    const p = percentiles(times);
    console.log(`| ${backend} | ${resources} resources | first load of the patient page p50 ${fmt(p.p50)} ms, max ${fmt(Math.max(...times))} ms (${RUNS} runs); $merged-record fully received in the browser at p50 ${fmt(percentiles(arrived).p50)} ms; $merged-record alone (from Node) p50 ${fmt(percentiles(server).p50)} ms | commit ${commit} | ${machine} |`);
  } finally {
    await browser.close();
    await tessera.close();
    await dropTestSchema(config);
    cleanup();
  }
}
