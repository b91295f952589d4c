import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { AuditEvent, Bundle, Resource } from '@medplum/fhirtypes';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { openAuditDatabase } from '../src/audit/audit-store.js';
import { storedAuditEvent } from '../src/audit/stored-event.js';
import { setClearance } from '../src/consent/clearance.js';
import { createClient } from '../src/security/clients.js';
import { Random } from '../src/synthetic/random.js';
import { addUser } from '../src/users/user-directory.js';
import { BACKENDS, testConfig } from './helpers/backends.js';
import { TestBrowser, hiddenField } from './helpers/browser.js';
import {
  allowed,
  consentResource,
  key,
  oracleScopes,
  planCallers,
  planConsents,
  typeAllowed,
  inScopeReach,
  TYPES,
  writeClinicalData,
  type CallerPlan,
  type Fact,
  type OracleCaller,
  type Rule,
} from './helpers/leak-community.js';
import { freePort, startTestServer, type TestServer } from './helpers/server.js';
import { appConfig, startLaunch } from './helpers/smart-launch.js';
import { startUpstreamProvider, type UpstreamAccount, type UpstreamProvider } from './helpers/upstream-oidc.js';

/**
 * The leak test of the governance issue, end to end: a generated community with random consents, security
 * labels, organizations, users, scopes, purposes, clearances and break-the-glass grants, and for every
 * caller and every route (search of each type with paging and totals, _summary=count, POST _search, read,
 * vread, instance, type and system history, _include, _revinclude, _has, chains, $everything, and reads,
 * a search and $everything as batch entries) each answer is checked against the policy as this test
 * evaluates it itself (test/helpers/leak-community.ts), from what it generated, not from Consent
 * resources, labels or tokens read back: no resource, include or count the policy denies, and nothing it
 * allows missing. Then every request the test made has its AuditEvent (by X-Request-Id): the client, the
 * user, the organization, the token, the purpose, the outcome, and exactly the patients whose data the
 * answer held (and what of each); and a privacy officer finds each caller's requests through the
 * AuditEvent API.
 *
 * Where the data come from: all generated here, seeded (each run is the same; LEAK_SEED picks another
 * community). Names, codes and values are synthetic (a small vocabulary of LOINC, SNOMED and ICD-10-CM
 * codes); users are made-up people at example.org; the community's identity provider is an oidc-provider
 * started by the test with made-up accounts.
 *
 * Everything goes through the real HTTP server with real tokens: clinical data and consents are written by
 * an admin client over the FHIR API; participants are registered over POST /participants; other backend
 * clients with createClient; clearances with the clearance module; users in the built-in directory. Backend
 * tokens come from /oauth/token (client_credentials, with purpose_of_use); users' from a SMART App Launch
 * driven by openid-client (authorization code + PKCE, the sign-in form, launch/patient selection). One user
 * signs in with a password; the others through the community's identity provider, which costs no password
 * hash (scrypt, about half a second each on a loaded machine).
 */
const SEED = Number(process.env.LEAK_SEED ?? 20261205);
const CALLERS = 24;
/** Callers checked at once: requests overlap, and the audit log commits their events in groups. */
const WIDTH = 16;
const APP_REDIRECT = 'http://127.0.0.1:9/app/callback';
const PASSWORD = 'correct horse battery staple';
const EMERGENCY = { resourceType: 'Parameters', parameter: [{ name: 'reason', valueString: 'emergency' }] };

/** Who a request was made as, as its AuditEvent must name them. */
interface Who {
  clientId?: string;
  user?: { id: string; fhirUser: string; role: string };
  organization?: string;
  purpose?: string;
  tokenId?: string;
}

/** A SMART app registered for users: its openid-client configuration, and who hears its token responses. */
interface App {
  clientId: string;
  config: oidc.Configuration;
  onTokenResponse: (res: Response) => Promise<void>;
}

interface Caller extends OracleCaller {
  plan: CallerPlan;
  token: string;
  who: Who;
}

/** A request the test made to Tessera and what its AuditEvent must say. */
interface Logged {
  kind: 'fhir' | 'login' | 'route' | 'picker';
  who: Who;
  method: string;
  url: string;
  requestId: string;
  /** The HTTP status the event records (for a sign-in, the sign-in's: 200 when it went on). */
  status: number;
  /** `token`, `password`, `federated` (login); `GET /oauth/authorize` (route). */
  subtype?: string;
  /** The resources the answer held (FHIR reads and searches); undefined: the entities are not checked. */
  disclosed?: string[];
}

const base64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/** The restful-interaction (or operation) and action of a FHIR request, from its method and path. */
function interactionOf(method: string, segments: string[]): { subtype: string; action: string } {
  const operation = segments.find((s) => s.startsWith('$'));
  if (operation) return { subtype: operation, action: 'E' };
  if (!segments.length) return { subtype: 'batch', action: 'E' };
  const history = segments.indexOf('_history');
  if (history >= 0) return { subtype: segments.length === 4 ? 'vread' : ['history-system', 'history-type', 'history-instance'][history], action: 'R' };
  if (segments[1] === '_search') return { subtype: 'search-type', action: 'E' };
  if (method === 'POST') return { subtype: 'create', action: 'C' };
  return segments.length === 1 ? { subtype: 'search-type', action: 'E' } : { subtype: 'read', action: 'R' };
}

for (const backend of BACKENDS) {
  describe(`leak test over HTTP: a generated community, every route checked against an independent policy, every access audited (${backend}, seed ${SEED})`, () => {
    let s: TestServer;
    let upstream: UpstreamProvider;
    const accounts: Record<string, UpstreamAccount> = {};
    const facts = new Map<string, Fact>();
    let consents = new Map<string, Rule[]>();
    const callers: Caller[] = [];
    const log: Logged[] = [];
    const random = new Random(SEED);
    let admin: Who;
    let checks = 0;

    const remember = (r: Resource, f: Omit<Fact, 'type' | 'id' | 'resource'>) => facts.set(key(r), { type: r.resourceType, id: r.id as string, resource: r, ...f });
    const fact = (r: Resource) => {
      const f = facts.get(key(r));
      assert.ok(f, `an answer holds ${key(r)}, which the generator never wrote`);
      return f;
    };
    const expected = (caller: Caller, type: string, interaction: 'r' | 's', where: (f: Fact) => boolean = () => true) =>
      [...facts.values()].filter((f) => f.type === type && where(f) && allowed(caller, f, interaction, consents)).map(key).sort();

    /** The resources an answer holds: a Bundle's entries (matches, includes; not OperationOutcomes), or the resource. */
    const disclosedBy = (status: number, body: any): string[] => {
      if (status >= 400 || !body?.resourceType) return [];
      // A batch's entries may be Bundles themselves (a search, $everything): what they hold is disclosed too.
      if (body.resourceType === 'Bundle') return ((body as Bundle).entry ?? []).flatMap((e) => (e.resource ? disclosedBy(200, e.resource) : []));
      return body.id && body.resourceType !== 'OperationOutcome' ? [key(body)] : [];
    };

    /** A request to the FHIR API with a bearer token (a path under the base, or a link's absolute URL), logged for the audit checks. */
    const fhir = async (who: Who, token: string, method: string, pathOrUrl: string, body?: unknown, checkEntities = true): Promise<{ status: number; body: any }> => {
      const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${s.base}/${pathOrUrl}`;
      const res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/fhir+json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      const parsed = text ? JSON.parse(text) : undefined;
      const requestId = res.headers.get('x-request-id');
      assert.ok(requestId, `${method} ${url}: no X-Request-Id`);
      log.push({ kind: 'fhir', who, method, url, requestId, status: res.status, disclosed: checkEntities ? disclosedBy(res.status, parsed) : undefined });
      return { status: res.status, body: parsed };
    };
    const get = (caller: Caller, pathOrUrl: string) => fhir(caller.who, caller.token, 'GET', pathOrUrl);

    /** Every page of a search, following `next` links; the matches and includes, and the total. */
    const allPages = async (caller: Caller, path: string) => {
      const matches: Resource[] = [];
      const included: Resource[] = [];
      const count = Number(new URLSearchParams(path.split('?')[1]).get('_count'));
      let total: number | undefined;
      let next: string | undefined = path;
      for (let page = 0; next && page < 100; page++) {
        const res = await get(caller, next);
        if (res.status !== 200) return { status: res.status, matches, included, total };
        const bundle = res.body as Bundle;
        assert.equal(bundle.type, 'searchset');
        total ??= bundle.total;
        const pageMatches = (bundle.entry ?? []).filter((e) => e.search?.mode === 'match');
        assert.ok(pageMatches.length <= count, `${caller.name}: ${path}: ${pageMatches.length} matches on a page of ${count}`);
        matches.push(...pageMatches.map((e) => e.resource as Resource));
        included.push(...(bundle.entry ?? []).filter((e) => e.search?.mode === 'include').map((e) => e.resource as Resource));
        next = bundle.link?.find((l) => l.relation === 'next')?.url;
        if (next) assert.ok(next.startsWith(`${s.base}/`), `${caller.name}: next link ${next} is not under the FHIR base`);
      }
      assert.equal(next, undefined, `${caller.name}: ${path}: more than 100 pages`);
      return { status: 200, matches, included, total };
    };

    /** Callers checked WIDTH at a time; each caller's requests in order. */
    const eachCaller = async (check: (caller: Caller) => Promise<void>) => {
      const queue = [...callers];
      await Promise.all(Array.from({ length: WIDTH }, async () => {
        for (let caller = queue.shift(); caller; caller = queue.shift()) await check(caller);
      }));
    };

    /** A backend client's token from the token endpoint (client_credentials), with its scope and purpose. */
    const clientToken = async (clientId: string, secret: string, scope: string | undefined, purpose: string | undefined, organization: string | undefined) => {
      const url = `${s.url}/oauth/token`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` },
        body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}), ...(purpose ? { purpose_of_use: purpose } : {}) }).toString(),
      });
      const json = (await res.json()) as { access_token: string; scope: string };
      assert.equal(res.status, 200, JSON.stringify(json));
      const tokenId = decodeJwt(json.access_token).jti;
      // The token request's event names the client and the token issued; the FHIR requests' also the organization and purpose.
      log.push({ kind: 'login', subtype: 'token', who: { clientId, tokenId }, method: 'POST', url, requestId: res.headers.get('x-request-id') as string, status: 200 });
      return { token: json.access_token, scope: json.scope, who: { clientId, organization, purpose, tokenId } satisfies Who };
    };

    /**
     * A user's SMART App Launch: openid-client builds the authorization request; the user signs in (password
     * form, or the community provider), picks the launch patient by name when the app asked for one; the
     * app exchanges the code (PKCE) at the token endpoint.
     */
    const launch = async (plan: CallerPlan, user: { id: string; email: string; fhirUser: string; role: string; account?: string }, app: App) => {
      const who: Who = { clientId: app.clientId, user: { id: user.id, fhirUser: user.fhirUser, role: user.role }, organization: plan.organization, purpose: plan.purpose };
      let tokenRequest: Logged | undefined;
      const config = app.config;
      app.onTokenResponse = async (res) => {
        const body = (await res.json()) as { access_token?: string };
        const tokenId = body.access_token ? decodeJwt(body.access_token).jti : undefined;
        tokenRequest = { kind: 'login', subtype: 'token', who: { clientId: app.clientId, user: who.user, tokenId }, method: 'POST', url: res.url, requestId: res.headers.get('x-request-id') as string, status: res.status };
      };
      const launchPatient = plan.kind !== 'patient' && plan.patient;
      const scope = `openid fhirUser ${launchPatient ? 'launch/patient ' : ''}${plan.scope}`;
      const { url, checks: pkce } = await startLaunch(config, { fhirBase: s.base, redirectUri: APP_REDIRECT, scope, extra: plan.purpose ? { purpose_of_use: plan.purpose } : {} });
      // Every response of Tessera's sign-in pages is audited: sign-ins as logins (with the user), the pages by route.
      const browser = new TestBrowser((target, method, res) => {
        if (target.origin !== s.url) return;
        const path = target.pathname;
        const signIn = (method === 'POST' && path === '/oauth/authorize') || path === '/oauth/federated/callback';
        if (method === 'POST' && path === '/oauth/authorize/patient') {
          // The launch-patient picker searches (or reads the patient chosen) through the engine as the user.
          log.push({ kind: 'picker', who, method, url: target.toString(), requestId: res.headers.get('x-request-id') as string, status: res.status });
          return;
        }
        log.push({
          kind: signIn ? 'login' : 'route',
          subtype: signIn ? (path === '/oauth/authorize' ? 'password' : 'federated') : `${method} ${path}`,
          who: signIn ? { clientId: app.clientId, user: who.user } : {},
          method,
          url: target.toString(),
          requestId: res.headers.get('x-request-id') as string,
          status: signIn ? 200 : res.status,
        });
      });
      let res = await browser.fetch(url);
      assert.equal(res.status, 200, res.html);
      if (user.account) {
        upstream.signInAs(user.account);
        res = await browser.fetch(`${s.url}/oauth/federated`, { form: { state: hiddenField(res.html, 'state') } });
        for (let hops = 0; res.location && !res.location.startsWith(APP_REDIRECT) && hops < 10; hops++) res = await browser.fetch(res.location);
      } else {
        res = await browser.fetch(`${s.url}/oauth/authorize`, { form: { state: hiddenField(res.html, 'state'), email: user.email, password: PASSWORD, totp: '' } });
      }
      if (launchPatient) {
        assert.match(res.html, /Choose a patient/, `${user.email}: ${res.status} ${res.html.slice(0, 300)}`);
        // The picker searches as the user (user/Patient.rs): it lists a patient only where the policy lets
        // this user see them. A planned patient it may not list is refused, and the next one it may is taken.
        const picker = { name: `${user.email} (patient picker)`, scopes: oracleScopes('user/Patient.rs'), organization: plan.organization, fhirUser: user.fhirUser, purpose: plan.purpose, clearance: plan.clearance };
        const visible = (id: string) => allowed(picker, facts.get(`Patient/${id}`) as Fact, 's', consents);
        const search = async (state: string, id: string) => {
          const family = (facts.get(`Patient/${id}`)?.resource as any).name[0].family;
          return browser.fetch(`${s.url}/oauth/authorize/patient`, { form: { state, action: 'search', name: family } });
        };
        let found = await search(hiddenField(res.html, 'state'), plan.patient as string);
        if (!visible(plan.patient as string)) {
          assert.ok(!found.html.includes(`name="patient" value="${plan.patient}"`), `${user.email}: the picker lists a patient the policy hides`);
          const refused = await browser.fetch(`${s.url}/oauth/authorize/patient`, { form: { state: hiddenField(found.html, 'state'), action: 'choose', patient: plan.patient as string } });
          assert.ok(!refused.location, `${user.email}: a hidden patient chosen by id`);
          const other = [...facts.values()].find((f) => f.type === 'Patient' && f.patient === f.id && visible(f.id));
          assert.ok(other, 'some patient the user may see');
          plan.patient = other.id;
          found = await search(hiddenField(refused.html, 'state'), plan.patient);
        }
        assert.ok(found.html.includes(`name="patient" value="${plan.patient}"`), found.html.slice(0, 500));
        res = await browser.fetch(`${s.url}/oauth/authorize/patient`, { form: { state: hiddenField(found.html, 'state'), action: 'choose', patient: plan.patient as string } });
      }
      assert.ok(res.location?.startsWith(APP_REDIRECT), `${user.email}: expected a redirect to the app, got ${res.status}: ${res.html.slice(0, 300)}`);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(res.location as string), { ...pkce, idTokenExpected: true });
      assert.ok(tokenRequest, 'the token request was seen');
      log.push(tokenRequest);
      assert.equal(tokens.scope, scope, `${user.email}: granted scopes`);
      assert.equal(tokens.patient, plan.patient, `${user.email}: launch patient`);
      return { token: tokens.access_token, who: { ...who, tokenId: decodeJwt(tokens.access_token).jti } };
    };

    before(async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      upstream = await startUpstreamProvider(accounts, `${url}/oauth/federated/callback`);
      const store = testConfig(backend);
      Object.assign(store.config, { port, baseUrl: url, oidc: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret } });
      s = await startTestServer(backend, store);
      const claims = decodeJwt(s.token);
      admin = { clientId: claims.client_id as string, tokenId: claims.jti };
      const post = async (r: Resource) => {
        const res = await fhir(admin, s.token, 'POST', r.resourceType, r);
        assert.equal(res.status, 201, JSON.stringify(res.body));
        return res.body as Resource;
      };

      // Organizations: participants registered over the registry API, each with its own backend client.
      const participants: { organization: string; clientId: string; secret: string }[] = [];
      for (const [i, name] of ['Northgate Health', 'Eastside Clinic', 'Harbor Lab'].entries()) {
        const res = await fetch(`${s.url}/participants`, {
          method: 'POST',
          headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name, mrnSystem: `urn:example:leak:mrn:${i}`, scope: 'system/*.rs patient/*.rs' }),
        });
        const created = (await res.json()) as any;
        assert.equal(res.status, 201, JSON.stringify(created));
        log.push({ kind: 'route', subtype: 'POST /participants', who: admin, method: 'POST', url: `${s.url}/participants`, requestId: res.headers.get('x-request-id') as string, status: 201 });
        const organization = `Organization/${created.participant.organizationId}`;
        remember({ resourceType: 'Organization', id: created.participant.organizationId, name }, { kinds: [], veryRestricted: false });
        participants.push({ organization, clientId: created.client.clientId, secret: created.client.clientSecret });
      }
      const organizations = participants.map((p) => p.organization);
      const { patients } = await writeClinicalData(random, post, remember);
      const plans = planCallers(random, CALLERS, organizations, patients);

      // Apps for users: a confidential chart viewer for staff, a public app for patients; openid-client's
      // view of each (discovery, JWKS) is made once, and tells the launch under way of its token response.
      const app = async (client: { clientId: string; clientSecret?: string }): Promise<App> => {
        const made: App = { clientId: client.clientId } as App;
        made.config = await appConfig(s.url, client.clientId, client.clientSecret, (res) => made.onTokenResponse(res));
        return made;
      };
      const chartViewer = await app(await createClient(s.tessera.db, { name: 'Chart Viewer', scope: 'openid fhirUser launch/patient user/*.rs patient/*.rs', redirectUris: [APP_REDIRECT] }));
      const patientApp = await app(await createClient(s.tessera.db, { name: 'Patient App', scope: 'openid fhirUser patient/*.rs', redirectUris: [APP_REDIRECT], public: true }));

      // Callers' registrations: clients and clearances, users in the directory (and at the identity provider).
      const registered: { plan: CallerPlan; register: () => Promise<{ token: string; who: Who; scope?: string }> }[] = [];
      let passwordUsers = 0;
      for (const plan of plans) {
        const holder = async (h: string) => setClearance(s.tessera.db, h, plan.clearance);
        if (plan.kind === 'participant') {
          const p = participants[plan.index];
          await holder(`client:${p.clientId}`);
          registered.push({ plan, register: () => clientToken(p.clientId, p.secret, plan.scope, plan.purpose, p.organization) });
        } else if (plan.kind === 'client') {
          const client = await createClient(s.tessera.db, { name: `leak client ${plan.index}`, scope: plan.scope });
          await holder(`client:${client.clientId}`);
          registered.push({ plan, register: () => clientToken(client.clientId, client.clientSecret as string, undefined, plan.purpose, undefined) });
        } else {
          const email = `leak.user${plan.index}@example.org`;
          // One user signs in with a password; the rest through the community's identity provider.
          const password = plan.kind !== 'patient' && passwordUsers++ === 0;
          const user = await addUser(s.tessera.repo, {
            name: `Leak User ${plan.index}`,
            email,
            role: plan.kind,
            organization: (plan.organization as string).slice('Organization/'.length),
            patient: plan.kind === 'patient' ? plan.patient : undefined,
            password: password ? PASSWORD : undefined,
          });
          const account = password ? undefined : `upstream-${plan.index}`;
          if (account) accounts[account] = { email, emailVerified: true };
          await holder(`user:${user.id}`);
          if (plan.kind !== 'patient') {
            // The staff member's Practitioner is in the store like any other.
            const practitioner = await fhir(admin, s.token, 'GET', user.fhirUser as string);
            remember(practitioner.body, { kinds: [], veryRestricted: false });
          }
          registered.push({ plan, register: () => launch(plan, { id: user.id, email, fhirUser: user.fhirUser as string, role: plan.kind, account }, plan.kind === 'patient' ? patientApp : chartViewer) });
        }
      }

      // The registry's Endpoints and the users' PractitionerRoles hold nobody's data; the histories below show them.
      for (const type of ['Endpoint', 'PractitionerRole']) {
        for (const e of (await fhir(admin, s.token, 'GET', `${type}?_count=100`)).body.entry ?? []) remember(e.resource, { kinds: [], veryRestricted: false });
      }

      // Consents, written over the FHIR API: the generator's rules, some naming the staff users.
      const staff = plans.filter((p) => p.kind === 'clinician' || p.kind === 'steward');
      const staffUsers = [...facts.values()].filter((f) => f.type === 'Practitioner' && (f.resource as any).telecom).map((f) => key(f));
      assert.equal(staffUsers.length, staff.length);
      consents = planConsents(random, patients, organizations, staffUsers);
      for (const [patient, rules] of consents) {
        for (const rule of rules) {
          // A Consent is in its patient's compartment: the policy governs who sees it like any record.
          remember(await post(consentResource(patient, rule)), { patient, kinds: [], veryRestricted: false });
        }
      }

      // Tokens from the token endpoint, then break-the-glass over the API.
      for (const { plan, register } of registered) {
        const { token, who } = await register();
        const fhirUser = who.user?.fhirUser;
        const caller: Caller = {
          name: `caller ${plan.index} (${plan.kind}${plan.organization ? ` at ${plan.organization}` : ''}: ${plan.scope}${plan.patient ? `, patient ${plan.patient}` : ''}${plan.purpose ? `, ${plan.purpose}` : ''}, clearance ${plan.clearance.join('+') || 'none'})`,
          plan,
          token,
          who,
          scopes: oracleScopes(plan.scope),
          patient: plan.patient,
          organization: plan.organization,
          fhirUser,
          purpose: plan.purpose,
          clearance: plan.clearance,
          ownRecord: plan.kind === 'patient',
        };
        if (plan.breakGlass) {
          const res = await fhir(who, token, 'POST', `Patient/${plan.breakGlass}/$break-the-glass`, EMERGENCY);
          // 403 without Patient read; 404 for a patient outside the scopes' reach (break-the-glass lifts
          // consent and labels, not scopes); then only clinicians may.
          const target = facts.get(`Patient/${plan.breakGlass}`) as Fact;
          const expected = !typeAllowed(caller, 'Patient', 'r') ? 403 : !inScopeReach(caller, target, 'r') ? 404 : plan.kind === 'clinician' ? 200 : 403;
          assert.equal(res.status, expected, `${caller.name}: break-the-glass`);
          if (expected === 200) caller.btgPatient = plan.breakGlass;
        }
        callers.push(caller);
      }
    });

    after(async () => {
      await s?.close();
      await upstream?.close();
    });

    it('tokens: each caller got exactly the scopes, patient context and purpose planned, from the real endpoints', async () => {
      for (const caller of callers) {
        const claims = decodeJwt(caller.token);
        assert.equal(claims.scope, caller.plan.kind === 'participant' || caller.plan.kind === 'client' ? caller.plan.scope : `openid fhirUser ${caller.plan.kind !== 'patient' && caller.plan.patient ? 'launch/patient ' : ''}${caller.plan.scope}`, caller.name);
        assert.equal(claims.patient, caller.plan.kind === 'participant' || caller.plan.kind === 'client' ? undefined : caller.plan.patient, caller.name);
        assert.equal(claims.purpose_of_use, caller.plan.purpose, caller.name);
        assert.equal(claims.organization, caller.plan.organization, caller.name);
      }
      const kinds = new Set(callers.map((c) => c.plan.kind));
      assert.deepEqual([...kinds].sort(), ['client', 'clinician', 'participant', 'patient', 'steward']);
    });

    it('searches of every type, page by page, with totals and _summary=count: exactly what the policy allows', async () => {
      await eachCaller(async (caller) => {
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
          const count = await get(caller, `${type}?_summary=count`);
          assert.equal(count.body.total, want.length, `${caller.name}: ${type} _summary=count`);
          checks += 2;
        }
      });
    });

    // Every caller asks for every resource, by read, vread or instance history in turn (caller and resource
    // decide which): each pair is checked once, and each route with every caller and every resource's kind,
    // a third of the requests that asking all three of each pair would take.
    it('read, vread and instance history of every resource: allowed ones answer with it, others are 403 (type) or 404', async () => {
      const all = [...facts.values()].filter((f) => f.type !== 'Endpoint' && f.type !== 'PractitionerRole');
      await eachCaller(async (caller) => {
        for (const [i, f] of all.entries()) {
          const want = allowed(caller, f, 'r', consents);
          const path = [`${f.type}/${f.id}`, `${f.type}/${f.id}/_history/1`, `${f.type}/${f.id}/_history`][(caller.plan.index + i) % 3];
          const res = await get(caller, path);
          if (want) {
            assert.equal(res.status, 200, `${caller.name}: ${path}`);
            const body = res.body as Resource | Bundle;
            const got = body.resourceType === 'Bundle' ? ((body as Bundle).entry ?? []).map((e) => key(e.resource as Resource)) : [key(body)];
            assert.deepEqual(got, [key(f)], `${caller.name}: ${path}`);
          } else {
            assert.ok([403, 404].includes(res.status), `${caller.name}: ${path} answered ${res.status}`);
            assert.equal(res.status === 403, !typeAllowed(caller, f.type, 'r'), `${caller.name}: ${path} 403 only when the type is out of scope`);
          }
          checks++;
        }
      });
    });

    it('_include, _include:iterate and _revinclude add only what the policy allows, and all of it', async () => {
      await eachCaller(async (caller) => {
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
      });
    });

    it('_has and chains count only what the policy lets the caller search', async () => {
      await eachCaller(async (caller) => {
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
        if (!typeAllowed(caller, 'Observation', 's')) return;
        if (!typeAllowed(caller, 'Patient', 's')) {
          assert.equal(chain.status, 403, `${caller.name}: chain through Patient`);
          return;
        }
        const want = expected(caller, 'Observation', 's', (o) => {
          const p = facts.get(`Patient/${o.patient}`) as Fact;
          return (p.resource as any).name[0].family === family && allowed(caller, p, 's', consents);
        });
        assert.deepEqual(chain.matches.map(key).sort(), want, `${caller.name}: chain`);
        checks++;
      });
    });

    it('type and system history: a caller the policy restricts in any way is refused; otherwise every version of every resource', async () => {
      await eachCaller(async (caller) => {
        for (const type of [...TYPES, undefined]) {
          const path = type ? `${type}/_history?_count=500` : '_history?_count=500';
          const res = await get(caller, path);
          assert.ok([200, 403].includes(res.status), `${caller.name}: ${path} answered ${res.status}`);
          if (res.status === 200) {
            const bundle = res.body as Bundle;
            assert.equal(bundle.link?.find((l) => l.relation === 'next'), undefined);
            for (const e of bundle.entry ?? []) {
              const f = facts.get(key(e.resource as Resource));
              if (f) assert.ok(allowed(caller, f, 'r', consents), `${caller.name}: ${path} holds ${key(f)} (${f.kinds.join(', ') || (f.veryRestricted ? 'very restricted' : 'of a patient whose consent denies the caller')}), which the policy withholds`);
            }
            const got = (bundle.entry ?? []).map((e) => fact(e.resource as Resource));
            const want = [...facts.values()].filter((f) => (!type || f.type === type) && allowed(caller, f, 'r', consents)).map(key).sort();
            assert.deepEqual(got.map(key).sort(), want, `${caller.name}: ${path}`);
          }
          checks++;
        }
      });
    });

    it('POST _search and batch (reads, a search and $everything as entries): the same answers as the routes themselves', async () => {
      const all = [...facts.values()].filter((f) => TYPES.includes(f.type as (typeof TYPES)[number]));
      const patients = all.filter((f) => f.type === 'Patient');
      await eachCaller(async (caller) => {
        const form = await fetch(`${s.base}/Observation/_search`, {
          method: 'POST',
          headers: { authorization: `Bearer ${caller.token}`, 'content-type': 'application/x-www-form-urlencoded' },
          body: '_count=500&_total=accurate',
        });
        const searched = (await form.json()) as Bundle;
        log.push({ kind: 'fhir', who: caller.who, method: 'POST', url: `${s.base}/Observation/_search`, requestId: form.headers.get('x-request-id') as string, status: form.status, disclosed: disclosedBy(form.status, searched) });
        if (typeAllowed(caller, 'Observation', 's')) {
          assert.equal(form.status, 200, `${caller.name}: POST Observation/_search`);
          const matches = (searched.entry ?? []).filter((e) => e.search?.mode === 'match');
          assert.deepEqual(matches.map((e) => key(fact(e.resource as Resource))).sort(), expected(caller, 'Observation', 's'), `${caller.name}: POST Observation/_search`);
          assert.equal(searched.total, expected(caller, 'Observation', 's').length);
        } else {
          assert.equal(form.status, 403, `${caller.name}: POST Observation/_search`);
        }
        checks++;

        const reads = all.filter((_, i) => (i + caller.plan.index) % 9 === 0);
        const patient = patients[caller.plan.index % patients.length];
        const urls = [...reads.map((f) => `${f.type}/${f.id}`), 'Observation?_count=500', `Patient/${patient.id}/$everything`];
        const res = await fhir(caller.who, caller.token, 'POST', '', { resourceType: 'Bundle', type: 'batch', entry: urls.map((url) => ({ request: { method: 'GET', url } })) });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        const entries = (res.body as Bundle).entry ?? [];
        assert.equal(entries.length, urls.length);
        for (const [i, f] of reads.entries()) {
          const { response, resource } = entries[i];
          if (allowed(caller, f, 'r', consents)) {
            assert.equal(response?.status, '200 OK', `${caller.name}: batch GET ${urls[i]}`);
            assert.equal(resource && key(resource), key(f));
          } else {
            assert.equal(response?.status.slice(0, 3), typeAllowed(caller, f.type, 'r') ? '404' : '403', `${caller.name}: batch GET ${urls[i]}`);
            assert.equal(resource, undefined);
          }
          checks++;
        }
        const search = entries[reads.length];
        if (typeAllowed(caller, 'Observation', 's')) {
          const matches = ((search.resource as Bundle).entry ?? []).filter((e) => e.search?.mode === 'match');
          assert.deepEqual(matches.map((e) => key(fact(e.resource as Resource))).sort(), expected(caller, 'Observation', 's'), `${caller.name}: batch search`);
        } else {
          assert.equal(search.response?.status.slice(0, 3), '403', `${caller.name}: batch search`);
        }
        const everything = entries[reads.length + 1];
        if (allowed(caller, patient, 'r', consents)) {
          const got = ((everything.resource as Bundle).entry ?? []).map((e) => key(fact(e.resource as Resource))).filter((k) => !k.startsWith('Practitioner/') && !k.startsWith('Organization/'));
          assert.deepEqual(got.sort(), [...facts.values()].filter((f) => f.patient === patient.id && allowed(caller, f, 'r', consents)).map(key).sort(), `${caller.name}: batch $everything`);
        } else {
          assert.ok(['403', '404'].includes(everything.response?.status.slice(0, 3) as string), `${caller.name}: batch $everything`);
        }
        checks += 2;
      });
    });

    it('$everything holds only what the policy allows, and counts only that', async () => {
      await eachCaller(async (caller) => {
        for (const p of [...facts.values()].filter((f) => f.type === 'Patient')) {
          const res = await get(caller, `Patient/${p.id}/$everything`);
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
      });
    });

    it('checked a meaningful number of answers, and the callers saw different things', () => {
      assert.ok(checks > 2000, `only ${checks} checks`);
      const seen = new Set(callers.map((c) => expected(c, 'Observation', 's').join()));
      assert.ok(seen.size > 8, `callers should differ: ${seen.size} distinct views of Observation`);
      const labelled = new Set([...facts.values()].flatMap((f) => [...f.kinds, ...(f.veryRestricted ? ['V'] : [])]));
      assert.deepEqual([...labelled].sort(), ['ETH', 'HIV', 'PSY', 'V'], 'every kind of sensitive data is in the community');
      const rules = [...consents.values()].flat();
      for (const form of ['actor', 'exceptActor', 'kind', 'exceptPurpose'] as const) assert.ok(rules.some((r) => r[form]), `a consent with ${form}`);
      assert.ok(callers.some((c) => c.btgPatient), 'someone broke the glass');
      // Type history both answered (to a caller nothing restricts for that type) and refused.
      const history = log.filter((l) => /\/fhir\/[A-Za-z]+\/_history\?/.test(l.url));
      assert.ok(history.some((l) => l.status === 200) && history.some((l) => l.status === 403), 'type history answered and refused');
    });

    it('the audit log has every request: who (client, user, organization), why, outcome, and exactly the patients each answer disclosed', async () => {
      await s.tessera.audit?.flush(); // the last requests' events may still be in the journal
      const auditDb = await openAuditDatabase(s.tessera.config);
      const events = new Map<string, AuditEvent>();
      try {
        for (const { content } of await auditDb.query<{ content: string }>('SELECT content FROM audit_event')) {
          const event = storedAuditEvent(content);
          const requestId = event.entity?.find((e) => e.type?.code === 'XrequestId')?.what?.identifier?.value as string;
          assert.ok(!events.has(requestId), `two AuditEvents for request ${requestId}`);
          events.set(requestId, event);
        }
      } finally {
        await auditDb.close();
      }
      let audited = 0;
      // Every request is checked, and the mismatches reported together (the first few of each kind).
      const problems = new Map<string, string[]>();
      for (const entry of log) {
        const what = `${entry.method} ${entry.url} (${entry.status}) as ${JSON.stringify(entry.who)}`;
        try {
          checkEvent(entry, what);
        } catch (err) {
          const e = err as { message: string; actual?: unknown; expected?: unknown };
          const kind = e.message.replace(what, '').split('\n')[0];
          problems.set(kind, [...(problems.get(kind) ?? []), `${e.message}: got ${JSON.stringify(e.actual)}, want ${JSON.stringify(e.expected)}`]);
        }
        audited++;
      }
      assert.equal(problems.size, 0, [...problems.values()].map((list) => `${list.length} requests: ${list[0]}`).join('\n\n'));
      assert.ok(audited > 2000, `only ${audited} requests audited`);
      console.log(`leak test (${backend}): ${checks} answers checked against the policy, ${audited} AuditEvents checked`);

      function checkEvent(entry: Logged, what: string): void {
        const event = events.get(entry.requestId);
        assert.ok(event, `no AuditEvent for ${what}`);
        if (entry.kind === 'picker') {
          // The engine's search or read as the user; its outcome is the engine's (a hidden patient: 404), not the page's.
          assert.equal(event.type?.code, 'rest', `${what}: type`);
          assert.ok(['search-type', 'read'].includes(event.subtype?.[0].code as string), `${what}: subtype`);
        } else {
          assert.equal(event.outcome, entry.status < 400 ? '0' : entry.status < 500 ? '4' : '8', `${what}: outcome`);
          assert.equal(event.outcomeDesc, `HTTP ${entry.status}`, `${what}: outcomeDesc`);
        }
        const target = new URL(entry.url);
        const segments = target.pathname.replace(/^\/fhir\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
        if (entry.kind === 'fhir') {
          const { subtype, action } = interactionOf(entry.method, segments);
          assert.equal(event.type?.code, 'rest', `${what}: type`);
          assert.equal(event.subtype?.[0].code, subtype, `${what}: subtype`);
          assert.equal(event.action, action, `${what}: action`);
          const query = event.entity?.find((e) => e.role?.code === '24');
          assert.equal(query?.query, target.search ? base64(target.search.slice(1)) : undefined, `${what}: the query entity`);
        } else if (entry.kind === 'picker') {
          // checked above
        } else if (entry.kind === 'login') {
          assert.equal(event.type?.code, '110114', `${what}: type`);
          assert.equal(event.subtype?.[1].code, entry.subtype, `${what}: login subtype`);
        } else {
          assert.equal(event.subtype?.[0].code, entry.subtype, `${what}: route`);
        }

        // Who: the client (source), the user (requestor, with the token id), the organization; why: the purpose.
        const agents = event.agent ?? [];
        const source = agents.filter((a) => a.type?.coding?.[0].code === '110153');
        assert.equal(source.length, 1, `${what}: one client agent`);
        assert.deepEqual(source[0].who?.identifier, { system: 'urn:tessera:oauth-client', value: entry.who.clientId ?? 'unidentified' }, `${what}: client`);
        const humans = agents.filter((a) => a.type?.coding?.[0].code === 'humanuser');
        const user = entry.who.user;
        if (user) {
          assert.equal(humans.length, 1, `${what}: one user agent`);
          assert.deepEqual(humans[0].who, { reference: user.fhirUser, identifier: { system: 'urn:tessera:user', value: user.id } }, `${what}: user`);
          assert.equal(humans[0].role?.[0].text, user.role, `${what}: user role`);
        } else {
          assert.equal(humans.length, 0, `${what}: no user agent`);
        }
        const requestor = user ? humans[0] : source[0];
        assert.equal(requestor.requestor, true, `${what}: requestor`);
        assert.deepEqual(requestor.policy, entry.who.tokenId ? [entry.who.tokenId] : undefined, `${what}: token id`);
        assert.deepEqual(agents.filter((a) => a.type?.text === 'organization').map((a) => a.who?.reference), entry.who.organization ? [entry.who.organization] : [], `${what}: organization`);
        // The declared purpose first; a use of a break-the-glass grant adds BTG (docs/governance.md section 6),
        // which only a caller who broke the glass can have.
        const purposes = (event.purposeOfEvent ?? []).map((p) => p.coding?.[0].code);
        const brokeGlass = callers.some((c) => c.btgPatient && c.who.user && c.who.user.id === entry.who.user?.id);
        const declared = entry.who.purpose ? [entry.who.purpose] : [];
        if (purposes.length > declared.length || (declared[0] !== 'BTG' && purposes.at(-1) === 'BTG')) {
          assert.deepEqual(purposes, [...declared, 'BTG'], `${what}: purpose of use, then the BTG flag`);
          assert.ok(brokeGlass, `${what}: flagged BTG only for a user who broke the glass`);
        } else {
          assert.deepEqual(purposes, declared, `${what}: purpose of use`);
        }

        if (entry.disclosed) {
          // What: the patients whose data the answer held (the oracle's facts say whose each resource is),
          // with how many resources of each type, and the resources themselves; a refused or empty answer
          // names only the patient or resource addressed.
          const [type, id] = segments;
          const addressed = type && id && !id.startsWith('_') && !id.startsWith('$') ? id : undefined;
          const patients = new Map<string, Map<string, number>>();
          if (addressed && type === 'Patient') patients.set(addressed, new Map());
          for (const ref of entry.disclosed) {
            const f = facts.get(ref);
            assert.ok(f, `${what}: disclosed ${ref}, which the generator never wrote`);
            const patient = f.type === 'Patient' ? f.id : f.patient;
            if (!patient) continue;
            const seen = patients.get(patient) ?? new Map<string, number>();
            patients.set(patient, seen.set(f.type, (seen.get(f.type) ?? 0) + 1));
          }
          const named = (event.entity ?? []).filter((e) => e.role?.code === '1');
          assert.deepEqual(named.map((e) => e.what?.reference).sort(), [...patients.keys()].map((p) => `Patient/${p}`).sort(), `${what}: the patients named`);
          for (const e of named) {
            const seen = patients.get((e.what?.reference as string).slice('Patient/'.length)) as Map<string, number>;
            assert.deepEqual((e.detail?.[0].valueString ?? '').split(',').filter(Boolean).sort(), [...seen].map(([t, n]) => `${t}=${n}`).sort(), `${what}: what was seen of ${e.what?.reference}`);
          }
          const resources = entry.status >= 400 ? (addressed ? [`${type}/${addressed}`] : []) : entry.disclosed;
          assert.deepEqual(
            (event.entity ?? []).filter((e) => e.role?.code === '4').map((e) => e.what?.reference).sort(),
            resources.filter((r) => !r.startsWith('Patient/')).sort(),
            `${what}: the resources named`,
          );
        }
      }
    });

    it('a privacy officer finds each caller\'s accesses through the AuditEvent API: every request, and no other', async () => {
      const officer = await createClient(s.tessera.db, { name: 'privacy office', scope: 'system/AuditEvent.rs' });
      await setClearance(s.tessera.db, `client:${officer.clientId}`, ['*']);
      const { token, who } = await clientToken(officer.clientId, officer.clientSecret as string, undefined, undefined, undefined);
      // One caller of each kind (participant, other client, clinician, steward, patient).
      const sample = callers.filter((c, i) => callers.findIndex((d) => d.plan.kind === c.plan.kind) === i);
      for (const caller of sample) {
        const agent = caller.who.user?.id ?? (caller.who.clientId as string);
        const found: string[] = [];
        for (let next: string | undefined = `AuditEvent?agent=${agent}&_count=1000`; next; ) {
          const res = await fhir(who, token, 'GET', next, undefined, false);
          assert.equal(res.status, 200, JSON.stringify(res.body));
          for (const e of (res.body as Bundle<AuditEvent>).entry ?? []) found.push(e.resource?.entity?.find((x) => x.type?.code === 'XrequestId')?.what?.identifier?.value as string);
          next = (res.body as Bundle).link?.find((l) => l.relation === 'next')?.url;
        }
        const made = log.filter((l) => (caller.who.user ? l.who.user?.id === agent : l.who.clientId === agent && !l.who.user)).map((l) => l.requestId);
        assert.deepEqual(found.sort(), made.sort(), `${caller.name}: AuditEvent?agent=${agent}`);
      }
    });
  });
}
