import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildWeb } from '../../scripts/build-web.mjs';

/** Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it): no browser download. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of each main page: test output, not committed. */
export const SCREENSHOTS = join(process.cwd(), 'test-results', 'portal');

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** Builds the portal from web/src (so the test runs the current source) and starts Chromium. */
export async function launchBrowser(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: apt-get install -y chromium`);
  await buildWeb();
  mkdirSync(SCREENSHOTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

/**
 * A page that fails the test on any console error (a CSP violation, a script error), records every
 * URL it requests (to check that no search criterion or name rides in a query string) and everything the
 * page writes to its console, of any level (to check that nothing about a patient is logged).
 */
export async function openPage(browser: Browser, width = 1280, height = 900): Promise<{ page: Page; errors: string[]; urls: string[]; logs: string[] }> {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const errors: string[] = [];
  const urls: string[] = [];
  const logs: string[] = [];
  page.on('console', (m) => (logs.push(m.text()), m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => urls.push(r.url()));
  return { page, errors, urls, logs };
}

/**
 * Signs in through Tessera's own sign-in page, keyboard only on the portal's side: the purpose of use is
 * chosen in the select, Enter on the button starts the SMART launch.
 */
export async function signIn(page: Page, base: string, email: string, password: string, purpose: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.getByLabel('Purpose of use').selectOption(purpose);
  await page.getByLabel('Purpose of use').focus();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/oauth\/authorize/);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${base}/**`);
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/** axe-core (WCAG 2.1 A and AA rules) on the page as it stands: returns the serious and critical violations. */
export async function seriousViolations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (an injected <script> would be refused).
  await page.evaluate(axeSource);
  const result = (await page.evaluate(`axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })`)) as {
    violations: { id: string; impact: string; nodes: { target: string[] }[] }[];
  };
  return result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical').map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

/** Checks accessibility at desktop and tablet widths, that nothing scrolls sideways, and saves a screenshot. */
export async function checkView(page: Page, name: string): Promise<void> {
  for (const [width, height] of [
    [1280, 900],
    [768, 1024],
  ]) {
    await page.setViewportSize({ width, height });
    assert.deepEqual(await seriousViolations(page), [], `${name} at ${width} px: serious or critical accessibility violations`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `${name} at ${width} px scrolls sideways by ${overflow} px`);
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}
