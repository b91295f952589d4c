// Safeguards against misuse and accidents: file modes, authentication before the body, rate limits,
// statement timeouts, bounds on search criteria and JSON, prototype keys, NUL bytes, Host-independent
// URLs, OperationOutcome for every error. All test data is synthetic, written in the tests themselves.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKENDS, testConfig, type Backend } from './helpers/backends.js';
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
      const contentType = await s.fhir('POST', 'Patient', 'name=x', { 'content-type': 'application/octet-stream' });
      assert.equal(contentType.status, 415);
      assert.equal(contentType.body.resourceType, 'OperationOutcome');
      const malformed = await s.fhir('POST', 'Patient', '{"resourceType":', {});
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.resourceType, 'OperationOutcome');
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
