import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Bundle, Consent, ConsentProvision, Resource } from '@medplum/fhirtypes';
import { setClearance } from '../src/consent/clearance.js';
import { dispatch } from '../src/engine/fhir-router.js';
import type { FhirRequest, FhirResponse } from '../src/engine/fhir-request.js';
import { FhirError } from '../src/fhir/outcome.js';
import { parseScopes } from '../src/security/scopes.js';
import type { AuthContext } from '../src/security/token-service.js';
import { Random } from '../src/synthetic/random.js';
import { BACKENDS } from './helpers/backends.js';
import { privacyConsent } from './helpers/governance.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The leak test of the governance issue: a generated community (seeded: each run is the same, and
 * LEAK_SEED picks another) with random consents, security labels, organizations, users, scopes,
 * purposes, clearances and break-the-glass grants. For every caller and every route (search of each
 * type with paging and totals, _summary=count, read, vread, history, _include, _revinclude, _has,
 * chains, $everything) each answer is checked against the policy as this test evaluates it itself, from
 * what it generated (not from Consent resources or labels read back): no resource, include or count the
 * policy denies, and nothing it allows missing.
 *
 * The data are synthetic: names, codes and values drawn from a small vocabulary (LOINC vital signs and
 * labs, an HIV viral load, ICD-10-CM opioid dependence, SNOMED depression and diabetes). Callers are
 * AuthContexts as the token service makes them (scopes, organization, purpose, patient context, user),
 * given to the engine that every HTTP route calls.
 */
const SEED = Number(process.env.LEAK_SEED ?? 20261205);
const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const TYPES = ['Patient', 'Observation', 'Condition', 'Encounter', 'Practitioner'] as const;
type Kind = 'HIV' | 'ETH' | 'PSY';
const PURPOSES = [undefined, 'TREAT', 'ETREAT', 'HPAYMT'] as const;

/** What the generator knows about each resource: the oracle decides from this alone. */
interface Fact {
  type: string;
  id: string;
  patient?: string;
  category?: 'vital-signs' | 'laboratory';
  kinds: Kind[];
  veryRestricted: boolean;
  resource: Resource;
}

/** A consent rule as the generator meant it. */
interface Rule {
  effect: 'permit' | 'deny';
  actor?: string;
  kind?: Kind;
  exceptPurpose?: string;
}

interface Caller {
  name: string;
  auth: AuthContext;
  clearance: string[];
  btgPatient?: string;
}

function scopeGrants(caller: Caller, f: Fact, interaction: 'r' | 's'): boolean {
  return caller.auth.scopes.some((s) => {
    if (!(s.resourceType === '*' || s.resourceType === f.type) || !s.interactions.has(interaction)) return false;
    if (s.context === 'patient') {
      if (!caller.auth.patient) return false;
      // Types outside the Patient compartment (Practitioner, Organization) hold nobody's data.
      if (f.patient !== undefined && f.patient !== caller.auth.patient) return false;
    }
    const category = s.restriction?.get('category');
    if (category && !(f.category && category.endsWith(`|${f.category}`))) return false;
    return true;
  });
}

function applies(rule: Rule, caller: Caller): boolean {
  if (rule.actor && rule.actor !== caller.auth.organization) return false;
  if (rule.exceptPurpose && rule.exceptPurpose === caller.auth.purposeOfUse) return false;
  return true;
}

/** The policy, evaluated independently of src/: scopes, patient context, consent, labels, clearance, BTG. */
function allowed(caller: Caller, f: Fact, interaction: 'r' | 's', consents: Map<string, Rule[]>): boolean {
  if (!scopeGrants(caller, f, interaction)) return false;
  if (!f.patient || caller.btgPatient === f.patient) return true;
  const rules = (consents.get(f.patient) ?? []).filter((r) => applies(r, caller));
  if (rules.some((r) => r.effect === 'deny' && (!r.kind || f.kinds.includes(r.kind)))) return false;
  const cleared = (k: string) => caller.clearance.includes(k) || caller.clearance.includes('*');
  for (const kind of f.kinds) {
    if (!cleared(kind) && !rules.some((r) => r.effect === 'permit' && r.kind === kind)) return false;
  }
  return !f.veryRestricted || cleared('V');
}

function consentResource(patient: string, rule: Rule): Consent {
  const provision: ConsentProvision =
    rule.effect === 'deny' && rule.exceptPurpose
      ? { type: 'deny', provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: rule.exceptPurpose }] }] }
      : {
          type: rule.effect,
          actor: rule.actor ? [{ role: { text: 'recipient' }, reference: { reference: rule.actor } }] : undefined,
          securityLabel: rule.kind ? [{ system: ACT, code: rule.kind }] : undefined,
        };
  return { ...privacyConsent(patient, provision), dateTime: undefined };
}

for (const backend of BACKENDS) {
  describe(`leak test: a generated community, every route checked against an independent policy (${backend}, seed ${SEED})`, () => {
    let s: TestServer;
    const facts = new Map<string, Fact>();
    const consents = new Map<string, Rule[]>();
    const callers: Caller[] = [];
    const random = new Random(SEED);
    const orgs: string[] = [];
    let checks = 0;

    const call = async (caller: Caller, method: string, path: string, body?: unknown): Promise<FhirResponse> => {
      const [p, q = ''] = path.split('?');
      const req: FhirRequest = { method, segments: p.split('/').filter(Boolean).map(decodeURIComponent), rawQuery: q, query: new URLSearchParams(q), body, auth: caller.auth, baseUrl: 'http://leak/fhir' };
      return dispatch(s.tessera.repo, req);
    };
    /** The status an engine call ends with (an error's), and its body. */
    const attempt = async (caller: Caller, path: string): Promise<{ status: number; body?: any }> => {
      try {
        const res = await call(caller, 'GET', path);
        return { status: res.status, body: res.rawBody ? JSON.parse(res.rawBody) : res.body };
      } catch (err) {
        if (err instanceof FhirError) return { status: err.status };
        throw err;
      }
    };
    const key = (r: Resource | Fact) => ('resourceType' in r ? `${r.resourceType}/${r.id}` : `${r.type}/${r.id}`);
    const fact = (r: Resource) => {
      const f = facts.get(key(r));
      assert.ok(f, `an answer holds ${key(r)}, which the generator never wrote`);
      return f;
    };
    const expected = (caller: Caller, type: string, interaction: 'r' | 's', where: (f: Fact) => boolean = () => true) =>
      [...facts.values()].filter((f) => f.type === type && where(f) && allowed(caller, f, interaction, consents)).map(key).sort();
    const typeAllowed = (caller: Caller, type: string, interaction: 'r' | 's') => caller.auth.scopes.some((sc) => (sc.resourceType === '*' || sc.resourceType === type) && sc.interactions.has(interaction) && (sc.context !== 'patient' || !!caller.auth.patient));

    /** Every page of a search, following `next` links; the matches and includes, and the total. */
    const allPages = async (caller: Caller, path: string) => {
      const matches: Resource[] = [];
      const included: Resource[] = [];
      let total: number | undefined;
      let next: string | undefined = path;
      for (let page = 0; next && page < 100; page++) {
        const res = await attempt(caller, next);
        if (res.status !== 200) return { status: res.status, matches, included, total };
        const bundle = res.body as Bundle;
        total ??= bundle.total;
        for (const e of bundle.entry ?? []) {
          if (e.search?.mode === 'match') matches.push(e.resource as Resource);
          if (e.search?.mode === 'include') included.push(e.resource as Resource);
        }
        const link = bundle.link?.find((l) => l.relation === 'next')?.url;
        next = link ? link.slice('http://leak/fhir/'.length) : undefined;
      }
      return { status: 200, matches, included, total };
    };

    before(async () => {
      s = await startTestServer(backend);
      const post = async (r: Resource) => (await s.fhir('POST', r.resourceType, r)).body as Resource;
      const remember = (r: Resource, f: Omit<Fact, 'type' | 'id' | 'resource'>) => facts.set(key(r), { type: r.resourceType, id: r.id as string, resource: r, ...f });
      for (const name of ['Northgate Health', 'Eastside Clinic', 'Harbor Lab']) {
        const org = await post({ resourceType: 'Organization', name });
        remember(org, { kinds: [], veryRestricted: false });
        orgs.push(`Organization/${org.id}`);
      }
      const practitioners: string[] = [];
      for (const family of ['Osler', 'Apgar']) {
        const r = await post({ resourceType: 'Practitioner', name: [{ family }] });
        remember(r, { kinds: [], veryRestricted: false });
        practitioners.push(r.id as string);
      }
      const patients: string[] = [];
      const families = ['Quist', 'Ruelas', 'Sandoval', 'Tremblay', 'Umeh', 'Vance', 'Wexler', 'Yilmaz'];
      for (const [i, family] of families.entries()) {
        // Distinct names and birth dates: no two records are one person to the patient index.
        const p = await post({ resourceType: 'Patient', name: [{ family, given: [`G${i}`] }], birthDate: `19${50 + i * 5}-0${1 + (i % 9)}-1${i}`, gender: i % 2 ? 'male' : 'female' });
        remember(p, { patient: p.id, kinds: [], veryRestricted: false });
        patients.push(p.id as string);
        const subject = { reference: `Patient/${p.id}` };
        const enc = await post({ resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject });
        remember(enc, { patient: p.id, kinds: [], veryRestricted: false });
        const observation = async (category: 'vital-signs' | 'laboratory', code: string, kinds: Kind[], veryRestricted = false) => {
          const r = await post({
            resourceType: 'Observation',
            status: 'final',
            meta: veryRestricted ? { security: [{ system: CONF, code: 'V' }] } : undefined,
            category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: category }] }],
            code: { coding: [{ system: 'http://loinc.org', code }] },
            subject,
            encounter: { reference: `Encounter/${enc.id}` },
            performer: [{ reference: `Practitioner/${random.pick(practitioners)}` }],
            valueQuantity: { value: random.int(1, 200) },
          } as Resource);
          remember(r, { patient: p.id, category, kinds, veryRestricted });
        };
        await observation('vital-signs', '8867-4', []);
        await observation('laboratory', '4548-4', []);
        if (random.chance(0.5)) await observation('laboratory', '20447-9', ['HIV']);
        if (random.chance(0.25)) await observation('laboratory', '2345-7', [], true);
        const condition = async (system: string, code: string, kinds: Kind[]) => {
          const r = await post({ resourceType: 'Condition', code: { coding: [{ system, code }] }, subject } as Resource);
          remember(r, { patient: p.id, kinds, veryRestricted: false });
        };
        await condition('http://snomed.info/sct', '44054006', []);
        if (random.chance(0.4)) await condition('http://hl7.org/fhir/sid/icd-10-cm', 'F11.20', ['ETH']);
        if (random.chance(0.4)) await condition('http://snomed.info/sct', '35489007', ['PSY']);
      }
      // Consents: each patient gets none or one or two of the forms the issue names.
      for (const patient of patients) {
        const rules: Rule[] = [];
        for (let n = random.int(0, 2); n > 0; n--) {
          const form = random.int(0, 4);
          const rule: Rule =
            form === 0 ? { effect: 'deny', actor: random.pick(orgs) }
            : form === 1 ? { effect: 'deny', kind: random.pick(['HIV', 'ETH', 'PSY'] as Kind[]) }
            : form === 2 ? { effect: 'deny', exceptPurpose: 'TREAT' }
            : form === 3 ? { effect: 'permit', actor: random.pick(orgs), kind: random.pick(['HIV', 'ETH', 'PSY'] as Kind[]) }
            : { effect: 'permit', kind: random.pick(['HIV', 'ETH', 'PSY'] as Kind[]) };
          rules.push(rule);
          const written = await s.fhir('POST', 'Consent', consentResource(patient, rule));
          assert.equal(written.status, 201);
          // A Consent is in its patient's compartment: the policy governs who sees it like any record.
          remember(written.body, { patient, kinds: [], veryRestricted: false });
        }
        consents.set(patient, rules);
      }
      // Callers: organisations' clients and people, with random scopes, purposes and clearances.
      const scopeSets = [
        'system/*.rs',
        'system/Patient.rs system/Observation.rs',
        'system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs system/Patient.rs',
        'system/Condition.rs system/Encounter.rs',
        'system/Patient.s system/Observation.rs',
        'user/*.rs',
        'patient/*.rs',
        'patient/Observation.rs patient/Patient.rs',
        'system/Practitioner.rs system/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory',
      ];
      const clearances = [[], [], ['HIV'], ['ETH', 'PSY'], ['V'], ['*']];
      for (let i = 0; i < 24; i++) {
        const scope = random.pick(scopeSets);
        const patientContext = scope.startsWith('patient/') && random.chance(0.85) ? random.pick(patients) : undefined;
        const asUser = scope.startsWith('user/') || random.chance(0.3);
        const clientId = `caller-${i}`;
        const caller: Caller = {
          name: `caller ${i} (${scope}${patientContext ? ', patient context' : ''}${asUser ? ', user' : ''})`,
          auth: {
            clientId,
            scopes: parseScopes(scope),
            organization: random.pick(orgs),
            purposeOfUse: random.pick(PURPOSES),
            patient: patientContext,
            user: asUser ? { id: `user-${i}`, role: 'clinician', fhirUser: `Practitioner/${practitioners[0]}` } : undefined,
          },
          clearance: random.pick(clearances),
        };
        await setClearance(s.tessera.db, asUser ? `user:user-${i}` : `client:${clientId}`, caller.clearance);
        if (asUser && random.chance(0.4)) {
          const target = random.pick(patients);
          const res = await call(caller, 'POST', `Patient/${target}/$break-the-glass`, { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'emergency' }] }).catch((e) => e);
          if (!(res instanceof Error)) caller.btgPatient = target;
        }
        callers.push(caller);
      }
    });
    after(async () => {
      s?.close();
    });

    it('searches of every type, page by page, with totals and _summary=count: exactly what the policy allows', async () => {
      for (const caller of callers) {
        for (const type of TYPES) {
          const res = await allPages(caller, `${type}?_count=4&_total=accurate`);
          if (!typeAllowed(caller, type, 's')) {
            assert.equal(res.status, 403, `${caller.name}: ${type} search`);
            continue;
          }
          assert.equal(res.status, 200, `${caller.name}: ${type} search`);
          const want = expected(caller, type, 's');
          assert.deepEqual(res.matches.map((r) => fact(r)).map(key).sort(), want, `${caller.name}: ${type} matches`);
          assert.equal(res.total, want.length, `${caller.name}: ${type} total`);
          const count = await attempt(caller, `${type}?_summary=count`);
          assert.equal(count.body.total, want.length, `${caller.name}: ${type} _summary=count`);
          checks += 2;
        }
      }
    });

    it('read, vread and instance history of every resource: allowed ones answer, others are 403 (type) or 404', async () => {
      for (const caller of callers) {
        for (const f of facts.values()) {
          const want = allowed(caller, f, 'r', consents);
          for (const path of [`${f.type}/${f.id}`, `${f.type}/${f.id}/_history/1`, `${f.type}/${f.id}/_history`]) {
            const res = await attempt(caller, path);
            if (want) {
              assert.equal(res.status, 200, `${caller.name}: ${path}`);
            } else {
              assert.ok([403, 404].includes(res.status), `${caller.name}: ${path} answered ${res.status}`);
              assert.equal(res.status === 403, !typeAllowed(caller, f.type, 'r'), `${caller.name}: ${path} 403 only when the type is out of scope`);
            }
            checks++;
          }
        }
      }
    });

    it('_include, _include:iterate and _revinclude add only what the policy allows, and all of it', async () => {
      for (const caller of callers) {
        const obs = await allPages(caller, 'Observation?_include=Observation:subject&_include=Observation:performer&_include:iterate=Patient:organization&_count=50');
        if (obs.status === 200) {
          for (const r of obs.included) assert.ok(allowed(caller, fact(r), 'r', consents), `${caller.name}: included ${key(r)}`);
          const subjects = new Set(obs.matches.map((r) => (r as any).subject.reference as string));
          const wantSubjects = [...subjects].filter((ref) => allowed(caller, facts.get(ref) as Fact, 'r', consents)).sort();
          assert.deepEqual(obs.included.filter((r) => r.resourceType === 'Patient').map(key).sort(), wantSubjects, `${caller.name}: included subjects`);
          checks++;
        }
        const pats = await allPages(caller, 'Patient?_revinclude=Observation:subject&_revinclude=Condition:subject&_count=50');
        if (pats.status === 200) {
          const found = new Set(pats.matches.map(key));
          const want = [...facts.values()]
            .filter((f) => (f.type === 'Observation' || f.type === 'Condition') && found.has(`Patient/${f.patient}`) && allowed(caller, f, 'r', consents))
            .map(key)
            .sort();
          assert.deepEqual(pats.included.map((r) => key(fact(r))).sort(), want, `${caller.name}: revincluded`);
          checks++;
        }
      }
    });

    it('_has and chains count only what the policy lets the caller search', async () => {
      for (const caller of callers) {
        for (const code of ['20447-9', '8867-4']) {
          const res = await allPages(caller, `Patient?_has:Observation:subject:code=http://loinc.org|${code}&_count=50`);
          if (!typeAllowed(caller, 'Patient', 's')) continue;
          if (!typeAllowed(caller, 'Observation', 's')) {
            assert.equal(res.status, 403, `${caller.name}: _has through Observation`);
            continue;
          }
          const want = expected(caller, 'Patient', 's', (p) =>
            [...facts.values()].some((o) => o.type === 'Observation' && o.patient === p.id && (o.resource as any).code.coding[0].code === code && allowed(caller, o, 's', consents)),
          );
          assert.deepEqual(res.matches.map(key).sort(), want, `${caller.name}: _has code ${code}`);
          checks++;
        }
        const family = 'Quist';
        const chain = await allPages(caller, `Observation?subject:Patient.family=${family}&_count=50`);
        if (!typeAllowed(caller, 'Observation', 's')) continue;
        if (!typeAllowed(caller, 'Patient', 's')) {
          assert.equal(chain.status, 403, `${caller.name}: chain through Patient`);
          continue;
        }
        const want = expected(caller, 'Observation', 's', (o) => {
          const p = facts.get(`Patient/${o.patient}`) as Fact;
          return (p.resource as any).name[0].family === family && allowed(caller, p, 's', consents);
        });
        assert.deepEqual(chain.matches.map(key).sort(), want, `${caller.name}: chain`);
        checks++;
      }
    });

    it('$everything holds only what the policy allows, and counts only that', async () => {
      for (const caller of callers) {
        for (const p of [...facts.values()].filter((f) => f.type === 'Patient')) {
          const res = await attempt(caller, `Patient/${p.id}/$everything`);
          if (!allowed(caller, p, 'r', consents)) {
            assert.ok([403, 404].includes(res.status), `${caller.name}: $everything of a patient out of reach answered ${res.status}`);
            continue;
          }
          assert.equal(res.status, 200);
          const entries = (res.body as Bundle).entry ?? [];
          for (const e of entries) assert.ok(allowed(caller, fact(e.resource as Resource), 'r', consents), `${caller.name}: $everything holds ${key(e.resource as Resource)}`);
          const inCompartment = [...facts.values()].filter((f) => f.patient === p.id && allowed(caller, f, 'r', consents)).map(key).sort();
          assert.deepEqual(entries.map((e) => key(e.resource as Resource)).filter((k) => !k.startsWith('Practitioner/') && !k.startsWith('Organization/')).sort(), inCompartment, `${caller.name}: $everything of ${p.id}`);
          assert.equal((res.body as Bundle).total, entries.length);
          checks++;
        }
      }
    });

    it('checked a meaningful number of answers, and the callers saw different things', () => {
      assert.ok(checks > 2000, `only ${checks} checks`);
      const seen = new Set(callers.map((c) => expected(c, 'Observation', 's').join()));
      assert.ok(seen.size > 8, `callers should differ: ${seen.size} distinct views of Observation`);
    });
  });
}
