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
  });
}
