import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { ORGANIZATIONS } from '../src/synthetic/community.js';
import { addUser } from '../src/users/user-directory.js';
import { BACKENDS } from './helpers/backends.js';
import { launchBrowser, openPage, signIn } from './helpers/portal-browser.js';
import { firstLoad, seedLargePatient } from './helpers/portal-load.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// Issue 19's page-load budget as a test: the first load of a patient page with about 2,000 resources,
// measured in Chromium. A budget test, not a benchmark: it reports the figure and fails only when the
// median is beyond the budget (1 s) with a generous margin (5x: medians of 1.8 s were seen under
// `nice -n 10` at load average 16 on the shared 2-core machine), so that a shared, loaded test machine
// does not fail it but a regression of the page or the merged record (a sequential fetch, a page drawn
// from every resource) does. The figure to quote is `npm run bench:portal`'s (docs/performance.md).
// Data: the demo community's generator, one person with 260 encounters (2,045 resources); the user is made up.

const BUDGET_MS = 1000;
const MARGIN = 5;
const PASSWORD = 'budget test password';

for (const backend of BACKENDS) {
  describe(`portal page-load budget (${backend})`, () => {
    let s: TestServer;
    let browser: Browser;

    before(async () => {
      s = await startTestServer(backend);
      browser = await launchBrowser();
    });

    after(async () => {
      await browser?.close();
      await s?.close();
    });

    it(`first load of a 2,000-resource patient page: median within ${MARGIN} x ${BUDGET_MS} ms`, async (t) => {
      const { pageId, resources } = await seedLargePatient(s.url, s.token);
      assert.ok(resources >= 2000, `${resources} resources`);
      await addUser(s.tessera.repo, { name: 'Budget Clinician', email: 'budget@example.org', role: 'clinician', organization: ORGANIZATIONS[0].id, password: PASSWORD });
      const { page, errors } = await openPage(browser);
      await signIn(page, s.url, 'budget@example.org', PASSWORD, 'TREAT');
      await firstLoad(page, pageId); // warms the server's caches, like any earlier visitor
      const runs: number[] = [];
      for (let i = 0; i < 3; i++) runs.push((await firstLoad(page, pageId)).total);
      const median = [...runs].sort((a, b) => a - b)[1];
      t.diagnostic(`${backend}: ${resources} resources, first load median ${Math.round(median)} ms (runs ${runs.map(Math.round).join(', ')}; budget ${BUDGET_MS} ms)`);
      assert.ok(median < BUDGET_MS * MARGIN, `first load median ${Math.round(median)} ms, beyond ${MARGIN} x the ${BUDGET_MS} ms budget`);
      // The page drawn is the whole record, not a part of it: the results list counts every laboratory result.
      assert.match(await page.locator('#results-h').innerText(), /Results \(\d{3,}\)/);
      assert.deepEqual(errors, []);
      await page.context().close();
    });
  });
}
