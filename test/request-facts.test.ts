import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createClient } from '../src/security/clients.js';
import { BACKENDS } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { privacyConsent } from './helpers/governance.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The privacy restriction's facts (clearance, whether any consent exists, ...) are asked in the token
 * check's statement (src/consent/privacy-facts.ts). What another process writes must still apply from
 * the next request: here the CLI, a process of its own, on a store with no Consent at all until it adds
 * one (the first consent changes which conditions a caller gets, not only what they read).
 */
for (const backend of BACKENDS) {
  describe(`facts asked with the token check (${backend})`, () => {
    let s: TestServer;
    let dir: string;
    let clientId: string;
    let token: string;
    const ids: Record<string, string> = {};
    const cli = (...args: string[]) =>
      tessera([...args, '--data', s.tessera.config.dataDir], { DATABASE_URL: s.tessera.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: s.tessera.config.schema ?? '' });
    const get = async (path: string) => {
      const res = await fetch(`${s.base}/${path}`, { headers: { authorization: `Bearer ${token}` } });
      return { status: res.status, body: (await res.json()) as { total?: number } };
    };

    before(async () => {
      s = await startTestServer(backend);
      dir = mkdtempSync(join(tmpdir(), 'tessera-facts-'));
      ids.patient = (await s.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Facts' }] })).body.id;
      const subject = { reference: `Patient/${ids.patient}` };
      ids.pulse = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject })).body.id;
      const hiv = { coding: [{ system: 'http://loinc.org', code: '20447-9', display: 'HIV 1 RNA' }] };
      ids.hiv = (await s.fhir('POST', 'Observation', { resourceType: 'Observation', status: 'final', code: hiv, subject, valueQuantity: { value: 40000 } })).body.id;
      const client = await createClient(s.tessera.db, { name: 'facts-treatment', scope: 'system/*.rs' });
      clientId = client.clientId;
      const res = await fetch(`${s.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: client.clientSecret as string, purpose_of_use: 'TREAT' }),
      });
      token = ((await res.json()) as { access_token: string }).access_token;
    });
    after(async () => {
      rmSync(dir, { recursive: true, force: true });
      await s.close();
    });

    it('the first Consent, added by the CLI, applies to the next read and search; revoking it lifts it', async () => {
      const [none] = await s.tessera.db.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM consent_rule');
      assert.equal(Number(none.n), 0, 'no consent before the CLI adds one');
      const search = `Observation?subject=Patient/${ids.patient}&_total=accurate`;
      assert.equal((await get(`Observation/${ids.pulse}`)).status, 200);
      assert.equal((await get(search)).body.total, 1, 'the HIV result is withheld for its label, the pulse is not');
      writeFileSync(join(dir, 'deny.json'), JSON.stringify(privacyConsent(ids.patient, { type: 'deny' })));
      const added = await cli('consents', 'add', join(dir, 'deny.json'));
      assert.equal(added.code, 0, added.stderr);
      assert.equal((await get(`Observation/${ids.pulse}`)).status, 404, 'the deny applies from the next request');
      assert.equal((await get(search)).body.total, 0);
      const id = /Consent\/([^ ]+) recorded/.exec(added.stdout)?.[1] as string;
      const revoked = await cli('consents', 'revoke', id);
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.equal((await get(`Observation/${ids.pulse}`)).status, 200, 'revoked: shared again');
      assert.equal((await get(search)).body.total, 1);
    });

    it('clearance granted and taken away by the CLI applies to the next read and search', async () => {
      const search = `Observation?subject=Patient/${ids.patient}&_total=accurate`;
      assert.equal((await get(`Observation/${ids.hiv}`)).status, 404);
      const granted = await cli('clients', 'clearance', clientId, 'HIV');
      assert.equal(granted.code, 0, granted.stderr);
      assert.equal((await get(`Observation/${ids.hiv}`)).status, 200);
      assert.equal((await get(search)).body.total, 2);
      const removed = await cli('clients', 'clearance', clientId, 'none');
      assert.equal(removed.code, 0, removed.stderr);
      assert.equal((await get(`Observation/${ids.hiv}`)).status, 404);
      assert.equal((await get(search)).body.total, 1);
    });

    it('a read and a search ask the restriction\'s facts in the token check\'s statement (PostgreSQL: one round trip)', { skip: backend !== 'postgres' }, async () => {
      const original = pg.Client.prototype.query;
      const texts: string[] = [];
      // Every statement of this process while the requests run (the audit writer is a thread of its own).
      pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
        const q = args[0] as string | { text: string };
        texts.push(typeof q === 'string' ? q : q.text);
        return (original as (...a: unknown[]) => unknown).apply(this, args);
      } as typeof original;
      try {
        for (const path of [`Observation/${ids.pulse}`, `Observation?subject=Patient/${ids.patient}`]) {
          texts.length = 0;
          assert.equal((await get(path)).status, 200);
          const facts = texts.filter((t) => t.includes('access_clearance'));
          assert.equal(facts.length, 1, `${path}: the facts are asked once`);
          assert.match(facts[0], /oauth_client/, `${path}: with the token's status`);
        }
      } finally {
        pg.Client.prototype.query = original;
      }
    });

    it('a client disabled by the CLI gets 401 on the next request, and its requests are served again once enabled', async () => {
      assert.equal((await cli('clients', 'disable', clientId)).code, 0);
      assert.equal((await get(`Observation/${ids.pulse}`)).status, 401);
      assert.equal((await cli('clients', 'enable', clientId)).code, 0);
      assert.equal((await get(`Observation/${ids.pulse}`)).status, 200);
    });
  });
}
