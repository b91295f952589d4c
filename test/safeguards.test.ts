// Safeguards against misuse and accidents: file modes, authentication before the body, rate limits,
// statement timeouts, bounds on search criteria and JSON, prototype keys, NUL bytes, Host-independent
// URLs, OperationOutcome for every error. All test data is synthetic, written in the tests themselves.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { BACKENDS, dropTestSchema, TEST_DATABASE_URL, testConfig, type Backend } from './helpers/backends.js';
import { tessera } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const mode = (path: string) => statSync(path).mode & 0o777;

/** A test server over a fresh store whose configuration the test adjusts first. */
async function serverWith(backend: Backend, adjust: (config: ReturnType<typeof testConfig>['config']) => void): Promise<TestServer> {
  const store = testConfig(backend);
  adjust(store.config);
  return startTestServer(backend, store);
}

for (const backend of BACKENDS) {
  describe(`safeguards (${backend})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startTestServer(backend);
    });
    after(async () => s?.close());

    it('data directory 0700 and database, WAL, SHM and key files 0600, also when they existed with looser modes', async () => {
      let dataDir = '';
      const t = await serverWith(backend, (config) => {
        dataDir = config.dataDir;
        // As an earlier version (or a copy) left them: a world-readable directory and database files.
        chmodSync(dataDir, 0o755);
        writeFileSync(join(dataDir, 'tessera.db'), '', { mode: 0o644 });
        writeFileSync(join(dataDir, 'tessera.db-wal'), '', { mode: 0o644 });
        mkdirSync(join(dataDir, 'keys'), { mode: 0o755 });
      });
      try {
        assert.equal((await t.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Modes' }] })).status, 201);
        assert.equal(mode(dataDir).toString(8), '700');
        assert.equal(mode(join(dataDir, 'keys')).toString(8), '700');
        assert.equal(mode(join(dataDir, 'keys', 'signing-key.jwk.json')).toString(8), '600');
        if (backend === 'sqlite') {
          for (const file of ['tessera.db', 'tessera.db-wal', 'tessera.db-shm']) {
            assert.equal(mode(join(dataDir, file)).toString(8), '600', file);
          }
        }
      } finally {
        await t.close();
      }
    });

    it('an unauthenticated request is answered 401 before its body is read, on every authenticated route', async () => {
      for (const [path, contentType] of [
        ['/fhir/Patient', 'application/fhir+json'],
        ['/fhir', 'application/fhir+json'],
        ['/fhir/$import-ccda', 'application/xml'],
        ['/messages/1/replay', 'application/json'],
        ['/participants', 'application/json'],
      ]) {
        const answer = await earlyAnswer(`${s.url}${path}`, contentType);
        assert.equal(answer.status, 401, path);
        assert.equal(answer.body.resourceType, 'OperationOutcome', path);
        assert.ok(answer.sentBytes < DECLARED_BODY_BYTES, `${path}: answered after ${answer.sentBytes} of ${DECLARED_BODY_BYTES} bytes`);
      }
    });

    it('per-client rate limit: 429 with an OperationOutcome and Retry-After beyond the limit; other clients unaffected', async () => {
      const t = await serverWith(backend, (config) => {
        config.rateLimitPerMinute = 5;
      });
      try {
        // The token endpoint is public (not counted); the admin client sends 5 within one minute's window.
        const other = await t.tokenFor('system/Patient.rs');
        const intoWindow = 60_000 - (Date.now() % 60_000);
        if (intoWindow < 5_000) await new Promise((resolve) => setTimeout(resolve, intoWindow + 100));
        const statuses: number[] = [];
        for (let i = 0; i < 5; i++) statuses.push((await t.fhir('GET', 'Patient?_count=1')).status);
        assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
        const again = await t.fhir('GET', 'Patient?_count=1');
        assert.equal(again.status, 429);
        assert.equal(again.body.resourceType, 'OperationOutcome');
        assert.equal(again.body.issue[0].code, 'throttled');
        const retryAfter = Number(again.headers.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
        // CDS Hooks is a public route (its services check the caller themselves): the same client's access
        // token is throttled there too, not let through to run record lookups.
        const cds = await fetch(`${t.url}/cds-services/duplicate-orders-sign`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${t.token}` },
          body: JSON.stringify({ hook: 'order-sign', hookInstance: 'rate-limit-probe', context: { patientId: 'nobody', draftOrders: { resourceType: 'Bundle', entry: [] } } }),
        });
        assert.equal(cds.status, 429);
        assert.equal(((await cds.json()) as { issue: { code: string }[] }).issue[0].code, 'throttled');
        assert.ok(Number(cds.headers.get('retry-after')) >= 1);
        assert.equal((await t.fhir('GET', 'Patient?_count=1', undefined, { authorization: `Bearer ${other}` })).status, 200);
      } finally {
        await t.close();
      }
    });

    it('links never come from the Host header: token endpoint, Location, Bundle links, CapabilityStatement', async () => {
      const evil = { host: 'evil.example' };
      const discovery = await rawGet(`${s.url}/.well-known/smart-configuration`, evil);
      assert.equal(JSON.parse(discovery.text).token_endpoint, `${s.url}/oauth/token`);
      const created = await rawRequest(`${s.url}/fhir/Patient`, 'POST', { ...evil, authorization: `Bearer ${s.token}`, 'content-type': 'application/fhir+json' }, JSON.stringify({ resourceType: 'Patient', name: [{ family: 'Hosted' }] }));
      assert.equal(created.status, 201);
      assert.ok(String(created.headers.location).startsWith(`${s.url}/fhir/Patient/`), String(created.headers.location));
      const searched = await rawGet(`${s.url}/fhir/Patient?name=hosted`, { ...evil, authorization: `Bearer ${s.token}` });
      const metadata = await rawGet(`${s.url}/fhir/metadata`, evil);
      for (const text of [discovery.text, searched.text, metadata.text, JSON.stringify(created.headers)]) {
        assert.doesNotMatch(text, /evil\.example/);
      }
      assert.match(searched.text, new RegExp(`"url":"${s.url}/fhir/Patient`));
    });

    it('every error is an OperationOutcome: unknown routes, methods a route does not answer, unsupported content types', async () => {
      const unknown = await fetch(`${s.url}/no-such-thing`);
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as any).resourceType, 'OperationOutcome');
      const method = await fetch(`${s.url}/oauth/token`, { method: 'PUT' });
      assert.equal(method.status, 405);
      assert.match(String(method.headers.get('allow')), /POST/);
      assert.equal(((await method.json()) as any).resourceType, 'OperationOutcome');
      const options = await fetch(`${s.base}/Patient`, { method: 'OPTIONS', headers: { authorization: `Bearer ${s.token}` } });
      assert.equal(options.status, 405);
      assert.equal(((await options.json()) as any).resourceType, 'OperationOutcome');
      const badUrl = await s.fhir('GET', 'Patient/%E0%A4%A');
      assert.equal(badUrl.status, 400);
      assert.equal(badUrl.body.resourceType, 'OperationOutcome');
      const contentType = await s.fhir('POST', 'Patient', 'name=x', { 'content-type': 'application/octet-stream' });
      assert.equal(contentType.status, 415);
      assert.equal(contentType.body.resourceType, 'OperationOutcome');
      const malformed = await s.fhir('POST', 'Patient', '{"resourceType":', {});
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.resourceType, 'OperationOutcome');
    });

    it('JSON nested deeper than 100 levels is a 400 naming the limit, not a stack overflow', async () => {
      const deep = `{"resourceType":"Patient","extension":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
      const res = await s.fhir('POST', 'Patient', deep);
      assert.equal(res.status, 400);
      assert.equal(res.body.resourceType, 'OperationOutcome');
      assert.match(res.body.issue[0].diagnostics, /nested deeper than 100 levels/);
      const participants = await fetch(`${s.url}/participants`, { method: 'POST', headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' }, body: deep });
      assert.equal(participants.status, 400);
    });

    it('tessera import: a file nested too deep is an error naming the file and line', async () => {
      const store = testConfig(backend);
      const inputs = mkdtempSync(join(tmpdir(), 'tessera-deep-'));
      try {
        writeFileSync(join(inputs, 'deep.json'), `{\n"resourceType": "Patient",\n"extension": ${'['.repeat(10_000)}${']'.repeat(10_000)}\n}`);
        writeFileSync(join(inputs, 'lines.ndjson'), `${JSON.stringify({ resourceType: 'Patient', id: 'deep-ok' })}\n{"resourceType":"Patient","extension":${'['.repeat(10_000)}${']'.repeat(10_000)}}\n`);
        const env = { DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' };
        const result = await tessera(['import', '--data', store.config.dataDir, inputs], env);
        assert.equal(result.code, 1, result.stderr);
        assert.match(result.stdout, /ERROR .*deep\.json:3: JSON nested deeper than 100 levels/);
        assert.match(result.stdout, /ERROR .*lines\.ndjson:2: JSON nested deeper than 100 levels/);
        assert.match(result.stdout, /Imported 1 resources/);
      } finally {
        await dropTestSchema(store.config);
        store.cleanup();
        rmSync(inputs, { recursive: true, force: true });
      }
    });

    it('Object.prototype names as element names are refused like any unknown element', async () => {
      const unknown = await s.fhir('POST', 'Patient', { resourceType: 'Patient', notAnElement: 'x' });
      assert.ok(unknown.status === 400 || unknown.status === 422, `unknown element: ${unknown.status}`);
      for (const key of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']) {
        // Written as text: an object literal's __proto__ would set the prototype instead of a key.
        const body = `{"resourceType":"Patient","name":[{"family":"Proto"}],"${key}":{"x":1}}`;
        const res = await s.fhir('POST', 'Patient', body);
        assert.equal(res.status, unknown.status, `${key}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
        assert.match(JSON.stringify(res.body), new RegExp(key), key);
        const nested = await s.fhir('POST', 'Patient', `{"resourceType":"Patient","name":[{"family":"Proto","${key}":"x"}]}`);
        assert.equal(nested.status, unknown.status, `name.${key}: ${JSON.stringify(nested.body)}`);
      }
      assert.equal((await s.fhir('GET', 'Patient?family=proto')).body.entry?.length ?? 0, 0);
      // Prototype names as resource types are unknown types, not lookups that find Object.prototype.
      for (const type of ['constructor', '__proto__', 'toString']) {
        assert.equal((await s.fhir('GET', `${type}/1`)).status, 404, type);
        assert.equal((await s.fhir('GET', `${type}?name=x`)).status, 404, type);
        const typed = await s.fhir('POST', 'Patient', `{"resourceType":"${type}"}`);
        assert.ok(typed.status === 400 || typed.status === 422, `resourceType ${type}: ${typed.status}`);
      }
    });

    it('NUL bytes are refused with 400: in ids, search values, the URL path and JSON strings', async () => {
      const nulString = await s.fhir('POST', 'Patient', '{"resourceType":"Patient","name":[{"family":"Nul\\u0000Byte"}]}');
      assert.equal(nulString.status, 400, JSON.stringify(nulString.body));
      assert.match(nulString.body.issue[0].diagnostics, /NUL/);
      const nulId = await s.fhir('PUT', 'Patient/nul%00id', { resourceType: 'Patient', id: 'nul\u0000id' });
      assert.equal(nulId.status, 400, JSON.stringify(nulId.body));
      for (const path of ['Patient/nul%00id', 'Patient/nul%00id/_history/1', 'Patient?name=a%00b', 'Patient?_id=a%00b', 'Patient?identifier=urn:x%00|1', 'Observation?subject=Patient/a%00', 'Patient?na%00me=a', 'Patient?birthdate=2020%00']) {
        const res = await s.fhir('GET', path);
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      }
      // The same searches inside a batch, where no HTTP layer reads the URL.
      const batch = await s.fhir('POST', '', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?name=a%00b' } }, { request: { method: 'GET', url: 'Patient/nul%00id' } }] });
      assert.equal(batch.status, 200);
      assert.deepEqual(batch.body.entry.map((e: any) => e.response.status.slice(0, 3)), ['400', '400']);
      const conditional = await s.fhir('POST', 'Patient', { resourceType: 'Patient' }, { 'if-none-exist': 'name=a%00b' });
      assert.equal(conditional.status, 400, JSON.stringify(conditional.body));
      // Outside the FHIR API too: the message log, and a client id at the token endpoint.
      for (const path of ['/messages/a%00b', '/messages?sender=a%00b']) {
        const res = await fetch(`${s.url}${path}`, { headers: { authorization: `Bearer ${s.token}` } });
        assert.equal(res.status, 400, path);
        assert.equal(((await res.json()) as any).resourceType, 'OperationOutcome');
      }
      const token = await fetch(`${s.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=a%00b&client_secret=x' });
      assert.ok(token.status === 400 || token.status === 401, `token endpoint: ${token.status}`);
    });

    it('bounds on search criteria: 400 too-costly naming the limit (parameters, OR values, chains, _has, _include)', async () => {
      const repeated = await s.fhir('GET', `Patient?${Array.from({ length: 1000 }, () => 'name=a').join('&')}`);
      assert.equal(repeated.status, 400, JSON.stringify(repeated.body).slice(0, 300));
      assert.equal(repeated.body.issue[0].code, 'too-costly');
      assert.match(repeated.body.issue[0].diagnostics, /at most 50 are allowed/);
      const cases: [string, RegExp][] = [
        [`Patient?name=${Array.from({ length: 101 }, (_, i) => `n${i}`).join(',')}`, /101 values; at most 100/],
        [`Patient?${Array.from({ length: 3 }, (_, p) => `name=${Array.from({ length: 80 }, (_, i) => `n${p}-${i}`).join(',')}`).join('&')}`, /240 values in all; at most 200/],
        ['Observation?subject:Patient.organization.partof.partof.name=x', /chains 4 references; at most 3/],
        ['Patient?_has:Observation:subject:_has:Provenance:target:_has:AuditEvent:entity:agent=x', /nests _has 3 deep; at most 2/],
        [`Observation?${Array.from({ length: 11 }, () => '_include=Observation:subject').join('&')}`, /11 _include\/_revinclude parameters; at most 10/],
      ];
      for (const [query, message] of cases) {
        const res = await s.fhir('GET', query);
        assert.equal(res.status, 400, query.slice(0, 80));
        assert.equal(res.body.issue[0].code, 'too-costly', query.slice(0, 80));
        assert.match(res.body.issue[0].diagnostics, message);
      }
      // Within the bounds the same kinds of search still run.
      const within = [
        `Patient?name=${Array.from({ length: 100 }, (_, i) => `n${i}`).join(',')}`,
        'Observation?subject:Patient.organization.name=x',
        'Patient?_has:Observation:subject:code=x',
        'Observation?_include=Observation:subject&_revinclude=Provenance:target',
      ];
      for (const query of within) assert.equal((await s.fhir('GET', query)).status, 200, query.slice(0, 80));
      // The same bound applies to criteria that are not a search request: If-None-Exist.
      const conditional = await s.fhir('POST', 'Patient', { resourceType: 'Patient' }, { 'if-none-exist': Array.from({ length: 60 }, () => 'name=a').join('&') });
      assert.equal(conditional.status, 400);
    });

    it('_offset and _count that are not safe non-negative whole numbers, or beyond the maximum, are 400', async () => {
      for (const query of ['_offset=99999999999999999999', '_offset=-1', '_offset=1.5', '_offset=abc', '_offset=100001', '_count=99999999999999999999', '_count=1e3', '_count=']) {
        const res = await s.fhir('GET', `Patient?${query}`);
        assert.equal(res.status, 400, `${query}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.resourceType, 'OperationOutcome');
      }
      assert.equal((await s.fhir('GET', 'Patient?_offset=100000&_count=5000')).status, 200);
    });

    it('PostgreSQL statement timeout: a statement stopped by it is a 503 OperationOutcome, and nothing is stored', { skip: backend === 'sqlite' && 'SQLite has no statement timeout; the search bounds limit what a search can cost' }, async () => {
      const t = await serverWith(backend, (config) => {
        config.statementTimeoutMs = 300;
      });
      // Another session holds the resource table locked, so Tessera's statements wait until their timeout.
      const locker = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await locker.connect();
      try {
        await locker.query('BEGIN');
        await locker.query(`LOCK TABLE ${t.tessera.config.schema}.resource IN ACCESS EXCLUSIVE MODE`);
        const started = performance.now();
        const created = await t.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Timedout' }] });
        assert.equal(created.status, 503, JSON.stringify(created.body));
        assert.equal(created.body.resourceType, 'OperationOutcome');
        assert.equal(created.body.issue[0].code, 'too-costly');
        assert.ok(performance.now() - started < 5000, 'stopped by the timeout, not by the lock holder');
        const searched = await t.fhir('GET', 'Patient?name=timedout');
        assert.equal(searched.status, 503);
        await locker.query('ROLLBACK');
        const after = await t.fhir('GET', 'Patient?name=timedout');
        assert.equal(after.status, 200);
        assert.equal(after.body.entry?.length ?? 0, 0, 'the timed-out create stored nothing');
        assert.equal((await t.fhir('POST', 'Patient', { resourceType: 'Patient', name: [{ family: 'Timedout' }] })).status, 201);
      } finally {
        await locker.end();
        await t.close();
      }
    });
  });
}

/** Declared in Content-Length; the test sends only the first chunk of it. */
const DECLARED_BODY_BYTES = 64 * 1024 * 1024;

/**
 * Sends a request's headers and 64 KiB of a declared 64 MiB body, then waits: a server that authenticates
 * before reading the body answers now; one that reads the body first waits for bytes that never come.
 */
function earlyAnswer(url: string, contentType: string): Promise<{ status: number; body: any; sentBytes: number }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': contentType, 'content-length': DECLARED_BODY_BYTES } });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer from ${url} within 5 s of sending ${chunk.length} bytes: the server waits for the body`));
    }, 5000);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), sentBytes: chunk.length });
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.write(chunk);
  });
}

/** A request with headers fetch() will not send (Host). */
function rawRequest(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const rawGet = (url: string, headers: Record<string, string>) => rawRequest(url, 'GET', headers);
