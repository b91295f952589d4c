import type { Page } from 'playwright-core';
import { directoryBundle, patientBundles } from '../../src/synthetic/community.js';

/**
 * A person with about 2,000 resources for the page-load budget (bench/portal.ts and
 * test/portal-budget.test.ts): the demo community's generator, one person with `encounters` encounters
 * (260: 2,045 resources), written through the FHIR API with an admin token. Returns the id of the page
 * a clinician opens (the person's enterprise record) and how many resources their record holds.
 */
export async function seedLargePatient(url: string, token: string, encounters = 260): Promise<{ pageId: string; resources: number }> {
  const headers = { authorization: `Bearer ${token}` };
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${url}/fhir${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  await post('', directoryBundle(7));
  const [bundle] = [...patientBundles({ seed: 7, patients: 1, encountersPerPatient: [encounters, encounters] })];
  const written = await post('', bundle);
  const patientId = /Patient\/([^/]+)/.exec(written.entry[0].response.location as string)?.[1] as string;
  const golden = await (await fetch(`${url}/fhir/Patient?link=Patient/${patientId}`, { headers })).json();
  const pageId: string = golden.entry?.[0]?.resource.id ?? patientId;
  const everything = await (await fetch(`${url}/fhir/Patient/${pageId}/$everything?_view=sources&_count=5000`, { headers })).json();
  if (!everything.entry) throw new Error(`$everything: ${JSON.stringify(everything).slice(0, 300)}`);
  return { pageId, resources: everything.entry.length };
}

/**
 * One first load of the patient page in a signed-in portal tab: from the navigation (from the search
 * page) to the page drawn (trend chart on its canvas and every section rendered, then the frame that
 * shows it). Returns the total and when the merged record had fully arrived (the rest is the page's own
 * work: parse, build, draw), in ms.
 */
export async function firstLoad(page: Page, pageId: string): Promise<{ total: number; arrived: number }> {
  await page.evaluate(() => (location.hash = '#/search'));
  await page.getByRole('heading', { name: 'Find a patient' }).waitFor();
  // A string, not a function: tsx would wrap a function's inner helpers in a __name() the page does not have.
  const [total, arrived] = (await page.evaluate(`(async () => {
    performance.clearResourceTimings();
    const t0 = performance.now();
    location.hash = '#/patient/${pageId}';
    await new Promise((done) => {
      const check = () => (document.querySelector('figure.trend canvas') && document.querySelector('#documents-h') ? done() : requestAnimationFrame(check));
      check();
    });
    await new Promise((done) => requestAnimationFrame(() => done()));
    const total = performance.now() - t0;
    const merged = performance.getEntriesByType('resource').filter((e) => e.startTime >= t0 && e.name.includes('$merged-record'));
    return [total, merged.length ? Math.max(...merged.map((e) => e.responseEnd - t0)) : NaN];
  })()`)) as [number, number];
  return { total, arrived };
}
