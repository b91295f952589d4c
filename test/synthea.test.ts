import assert from 'node:assert/strict';
import type { Bundle, Resource } from '@medplum/fhirtypes';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BACKENDS, testConfig, type Backend } from './helpers/backends.js';
import { CLI, FIXTURES } from './helpers/paths.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * 7 of the 55 Synthea bundles of smart-on-fhir/generated-sample-data (R4/SYNTHEA, Apache-2.0): 6 patients
 * and the hospital organisations, chosen to hold every resource type and nearly every element of the
 * full set, and fullUrls reused across bundles with different content (test/fixtures/synthea-r4/README.md).
 */
const SYNTHEA = join(FIXTURES, 'synthea-r4');
const EXPECTED_FILES = 7;
const EXPECTED_RESOURCES = 887;
const files = readdirSync(SYNTHEA).filter((f) => f.endsWith('.json')).sort();
const bundles: Bundle[] = files.map((f) => JSON.parse(readFileSync(join(SYNTHEA, f), 'utf8')));

/** JSON with sorted keys, so that equal content compares equal whatever the key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as any)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The resource without server-assigned id/meta, with each reference replaced by `mapRef(reference)`. */
function comparable(resource: Resource, mapRef: (ref: string) => string): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = k === 'reference' && typeof x === 'string' ? mapRef(x) : walk(x);
      return out;
    }
    return v;
  };
  const { id: _id, meta, ...rest } = resource as any;
  const { versionId: _v, lastUpdated: _l, ...clientMeta } = meta ?? {};
  return walk(Object.keys(clientMeta).length ? { ...rest, meta: clientMeta } : rest);
}

/** A key for a resource's own content (references blanked): what a reference must point at. */
function contentKey(resource: Resource): string {
  return createHash('sha1').update(canonical(comparable(resource, () => ''))).digest('hex');
}

/**
 * Multiset of resources where each reference is replaced by the content key of its target: equal
 * multisets mean every resource came back equal and every reference resolves to the equivalent target.
 */
function fingerprint(resources: Resource[], resolve: (ref: string) => Resource | undefined): string[] {
  return resources
    .map((r) => canonical(comparable(r, (ref) => {
      if (ref.startsWith('#')) return ref; // a contained resource: stays as it is
      const target = resolve(ref);
      return target ? `->${target.resourceType}:${contentKey(target)}` : `UNRESOLVED ${ref}`;
    })))
    .sort();
}

const original = (() => {
  // Synthea reuses fullUrls (e.g. an organisation's) across bundles with different content, so each
  // bundle's references resolve within that bundle only, as a transaction does.
  const all: Resource[] = [];
  const prints: string[] = [];
  for (const b of bundles) {
    const byFullUrl = new Map((b.entry ?? []).map((e) => [e.fullUrl as string, e.resource as Resource]));
    const resources = (b.entry ?? []).map((e) => e.resource as Resource);
    all.push(...resources);
    prints.push(...fingerprint(resources, (ref) => byFullUrl.get(ref)));
  }
  return { all, fingerprint: prints.sort() };
})();

async function readEverything(s: TestServer): Promise<Resource[]> {
  const types = [...new Set(original.all.map((r) => r.resourceType))];
  const out: Resource[] = [];
  for (const type of types) {
    // Pages of 100, so that the larger types (339 Observations) are read back across several pages.
    let path: string | undefined = `${type}?_count=100&_sort=_id`;
    while (path) {
      const page: { status: number; body: any } = await s.fhir('GET', path);
      assert.equal(page.status, 200);
      out.push(...(page.body.entry ?? []).map((e: any) => e.resource));
      const next = page.body.link?.find((l: any) => l.relation === 'next')?.url;
      path = next ? next.slice(next.indexOf('/fhir/') + 6) : undefined;
    }
  }
  return out;
}

async function assertStoredEqualsOriginal(s: TestServer): Promise<void> {
  const stored = await readEverything(s);
  assert.equal(stored.length, original.all.length);
  const byRef = new Map(stored.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const got = fingerprint(stored, (ref) => byRef.get(ref));
  const unresolved = got.filter((f) => f.includes('UNRESOLVED'));
  assert.deepEqual(unresolved.slice(0, 3).map((f) => f.slice(f.indexOf('UNRESOLVED'), f.indexOf('UNRESOLVED') + 80)), [], 'every reference resolves');
  assert.deepEqual(got, original.fingerprint);
}

const run = promisify(execFile);

for (const backend of BACKENDS) {
  describe(`Synthea: all ${files.length} bundles (${backend})`, () => {
    it(`has the ${EXPECTED_FILES} bundles and ${EXPECTED_RESOURCES} resources the fixture README lists`, () => {
      assert.equal(files.length, EXPECTED_FILES);
      assert.equal(original.all.length, EXPECTED_RESOURCES);
    });

    describe('through tessera import', () => {
      let s: TestServer;
      let stdout = '';
      before(async () => {
        const store = testConfig(backend as Backend);
        const env = { ...process.env, DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '', LOG_LEVEL: 'warn' };
        ({ stdout } = await run(process.execPath, [CLI, 'import', '--data', store.config.dataDir, SYNTHEA], { env, maxBuffer: 16 << 20 }));
        s = await startTestServer(backend as Backend, store);
      });
      after(async () => s?.close());

      it('reports every resource imported and no error', () => {
        assert.match(stdout, new RegExp(`Imported ${EXPECTED_RESOURCES} resources from ${EXPECTED_FILES} files`));
        assert.doesNotMatch(stdout, /ERROR/);
      });

      it('reads back every resource equal, with every reference resolved', async () => {
        await assertStoredEqualsOriginal(s);
      });
    });

    describe('through POST of each transaction Bundle', () => {
      let s: TestServer;
      before(async () => (s = await startTestServer(backend as Backend)));
      after(async () => s?.close());

      it('accepts every bundle and reads back every resource equal, with every reference resolved', async () => {
        for (const bundle of bundles) {
          const res = await s.fhir('POST', '', bundle, { prefer: 'return=minimal' });
          assert.equal(res.status, 200);
          assert.ok(res.body.entry.every((e: any) => e.response.status === '201 Created'));
        }
        await assertStoredEqualsOriginal(s);
      });
    });
  });
}
