import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BACKENDS } from './helpers/backends.js';
import { startTestServer, type TestServer } from './helpers/server.js';

// The official FHIR R4 examples (npm hl7.fhir.r4.examples, CC0): each is stored with PUT and read back.
const dir = dirname(createRequire(import.meta.url).resolve('hl7.fhir.r4.examples/package.json'));
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json' && f !== 'ig-r4.json').sort();

/**
 * The examples our validator rejects, each checked against the R4 specification: every one breaks a rule
 * of the specification itself (the examples are not all conformant). Anything not listed must be accepted.
 */
const REJECTED: Record<string, { reason: RegExp; why: string; status?: number }> = {
  'Bundle-dataelements.json': { reason: /bdl-7/, why: 'duplicate fullUrls without distinct meta.versionId (invariant bdl-7)' },
  'Bundle-v2-valuesets.json': {
    reason: /Invalid code format/,
    why: 'embeds CodeSystem v2-0550, below: codes that end in a non-breaking space',
  },
  'CodeSystem-v2-0550.json': {
    reason: /Invalid code format/,
    why: 'codes such as "CHEST\u00c2\u00a0" end in U+00A0 (mis-decoded UTF-8); the code pattern [^\\s]+(\\s[^\\s]+)* forbids trailing whitespace',
  },
  'ImplementationGuide-fhir.json': { reason: /ImplementationGuide\.name.*Missing required/, why: 'name and status are 1..1 in ImplementationGuide' },
  'Questionnaire-qs1.json': { reason: /linkId: Missing required property/, why: 'Questionnaire.item.linkId is 1..1' },
  'StructureDefinition-Definition.json': { reason: /sdf-4/, why: 'logical model with abstract=false and no baseDefinition (sdf-4)' },
  'StructureDefinition-Event.json': { reason: /sdf-4/, why: 'logical model with abstract=false and no baseDefinition (sdf-4)' },
  'StructureDefinition-FiveWs.json': { reason: /sdf-4/, why: 'logical model with abstract=false and no baseDefinition (sdf-4)' },
  'StructureDefinition-Request.json': { reason: /sdf-4/, why: 'logical model with abstract=false and no baseDefinition (sdf-4)' },
  'SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json': {
    status: 400,
    reason: /not a valid FHIR id/,
    why: 'its id has 68 characters; an R4 id is at most 64 ([A-Za-z0-9\-\.]{1,64})',
  },
};
// AuditEvents are the server's own record (src/audit): none can be written through the API, examples included.
for (const file of readdirSync(dir).filter((f) => f.startsWith('AuditEvent-'))) {
  REJECTED[file] = { status: 405, reason: /written by the server only/, why: 'the audit log is append-only and written by the server alone' };
}
// A Subscription is a participant's (docs/notifications.md): the examples name none, and the admin client is none.
for (const file of ['Subscription-example.json', 'Subscription-example-error.json']) {
  REJECTED[file] = { reason: /A Subscription is for a participant/, why: "a Subscription belongs to a participant, which the examples do not name (Tessera's rule, not R4's)" };
}
for (const kind of ['codesystem-extensions-CodeSystem', 'valueset-extensions-ValueSet']) {
  for (const code of ['author', 'effective', 'end', 'keyword', 'workflow']) {
    REJECTED[`SearchParameter-${kind}-${code}.json`] = { reason: /SearchParameter\.base: Missing required/, why: 'SearchParameter.base is 1..*' };
  }
}

function withoutServerMeta(resource: any): any {
  const { meta, ...rest } = resource;
  const { versionId: _v, lastUpdated: _l, ...clientMeta } = meta ?? {};
  return Object.keys(clientMeta).length ? { ...rest, meta: clientMeta } : rest;
}

async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      await fn(items[next++]);
    }
  }));
}

for (const backend of BACKENDS) {
  describe(`official R4 examples (${backend})`, () => {
    let s: TestServer;
    before(async () => (s = await startTestServer(backend)));
    after(async () => s?.close());

    it(`stores and reads back all ${files.length} examples, except the listed non-conformant ones`, async () => {
      assert.ok(files.length > 5000);
      const failures: string[] = [];
      const rejected: string[] = [];
      await inParallel(files, 4, async (file) => {
        const example = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8'));
        const put = await s.fhir('PUT', `${example.resourceType}/${example.id}`, example);
        const expected = REJECTED[file];
        if (expected) {
          rejected.push(file);
          const issues = (put.body.issue ?? []).map((i: any) => `${i.expression?.[0] ?? ''}: ${i.diagnostics}`).join(' | ');
          if (put.status !== (expected.status ?? 422) || !expected.reason.test(issues)) {
            failures.push(`${file}: expected ${expected.status ?? 422} matching ${expected.reason} (${expected.why}), got ${put.status} ${issues}`);
          }
          return;
        }
        if (put.status !== 201) {
          failures.push(`${file}: PUT ${put.status} ${JSON.stringify(put.body).slice(0, 300)}`);
          return;
        }
        const read = await s.fhir('GET', `${example.resourceType}/${example.id}`);
        if (read.status !== 200) {
          failures.push(`${file}: GET ${read.status}`);
        } else {
          try {
            // Security labels Tessera adds from the codes (src/labels) are the server's, not the example's.
            const stored = example.meta?.security ? read.body : { ...read.body, meta: { ...read.body.meta, security: undefined } };
            if (stored.meta && stored.meta.security === undefined) delete stored.meta.security;
            assert.deepEqual(withoutServerMeta(stored), withoutServerMeta(example));
          } catch {
            failures.push(`${file}: read back differs from the example`);
          }
        }
      });
      assert.deepEqual(failures, []);
      assert.equal(rejected.length, Object.keys(REJECTED).length);
    });
  });
}
