import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { URI } from 'otpauth';
import { createClient } from '../src/security/clients.js';
import { createTessera, type Tessera } from '../src/server/tessera.js';
import { rolePurposesFromEnv } from '../src/auth/purpose-of-use.js';
import { addUser, findUserByEmail, ROLES, setUserDisabled } from '../src/users/user-directory.js';
import { dropTestSchema, BACKENDS, testConfig } from './helpers/backends.js';
import { TestBrowser, hiddenField } from './helpers/browser.js';
import { CLI } from './helpers/paths.js';
import { freePort, getToken } from './helpers/server.js';
import { appConfig, startLaunch as beginLaunch } from './helpers/smart-launch.js';
import { startUpstreamProvider, type UpstreamProvider } from './helpers/upstream-oidc.js';

// Everything here is synthetic, written by this test: an Organization, three Patients, users with made-up
// names at example.org, and two apps. The community's OpenID Connect provider is an oidc-provider started
// below with two made-up accounts.

const APP_REDIRECT = 'http://127.0.0.1:9/app/callback';
const APP_SCOPE = 'openid fhirUser launch/patient offline_access online_access user/*.rs patient/*.rs';
const PASSWORD = 'correct horse battery staple';

/** openid-client rejects with a ResponseBodyError whose `error` is the OAuth error code. */
const oauthError = (code: string) => (err: unknown) => (err as { error?: string }).error === code;

/** `tessera ARGS` in a child process against the test's store, with optional standard input. */
function tessera(args: string[], env: Record<string, string>, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_LEVEL: 'warn', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

for (const backend of BACKENDS) {
  describe(`sign-in: SMART App Launch and the user directory (${backend})`, () => {
    const store = testConfig(backend);
    const env = { DATABASE_URL: store.config.databaseUrl ?? '', TESSERA_PG_SCHEMA: store.config.schema ?? '' };
    const data = ['--data', store.config.dataDir];
    const logLines: string[] = [];
    let t: Tessera;
    let base: string;
    let adminToken: string;
    let upstream: UpstreamProvider;
    let orgId: string;
    const patients: Record<string, string> = {};
    let app: { clientId: string; clientSecret: string };
    let publicApp: { clientId: string };
    let clinician: { id: string; fhirUser: string };
    let patientUser: { id: string };

    const fhir = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(`${base}/fhir/${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/fhir+json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return { status: res.status, body: (await res.json()) as any };
    };

    /** openid-client's view of Tessera for a client: discovery from the issuer, id_token signatures checked against the JWKS. */
    const clientConfig = (clientId: string, secret?: string) => appConfig(base, clientId, secret);

    /** The app's side of a launch: an authorization URL built by openid-client, and the checks it will apply. */
    const startLaunch = (config: oidc.Configuration, scope = APP_SCOPE, extra: Record<string, string> = {}) => beginLaunch(config, { fhirBase: `${base}/fhir`, redirectUri: APP_REDIRECT, scope, extra });

    /** The user's side: open the sign-in page, post the form; returns the browser and the response to the post. */
    const signIn = async (url: URL, credentials: { email: string; password: string; totp?: string }, browser = new TestBrowser()) => {
      const page = await browser.fetch(url);
      assert.equal(page.status, 200, page.html);
      const res = await browser.fetch(`${base}/oauth/authorize`, { form: { state: hiddenField(page.html, 'state'), ...credentials, totp: credentials.totp ?? '' } });
      return { browser, res };
    };

    /** A full launch for `email`: sign in, choose `patientName` when asked, exchange the code with openid-client. */
    const launch = async (email: string, options: { scope?: string; patientName?: string; totp?: string; config?: oidc.Configuration; extra?: Record<string, string> } = {}) => {
      const config = options.config ?? (await clientConfig(app.clientId, app.clientSecret));
      const { url, checks } = await startLaunch(config, options.scope, options.extra);
      const { browser, res: signedIn } = await signIn(url, { email, password: PASSWORD, totp: options.totp });
      let res = signedIn;
      if (!res.location && options.patientName) {
        assert.match(res.html, /Choose a patient/);
        const found = await browser.fetch(`${base}/oauth/authorize/patient`, { form: { state: hiddenField(res.html, 'state'), action: 'search', name: options.patientName } });
        const id = /name="patient" value="([^"]+)"/.exec(found.html)?.[1];
        assert.ok(id, found.html);
        res = await browser.fetch(`${base}/oauth/authorize/patient`, { form: { state: hiddenField(found.html, 'state'), action: 'choose', patient: id } });
      }
      assert.ok(res.location?.startsWith(APP_REDIRECT), `expected a redirect to the app, got ${res.status}: ${res.html.slice(0, 300)}`);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(res.location as string), { ...checks, idTokenExpected: options.scope === undefined || options.scope.includes('openid') });
      return { tokens, config, checks, location: res.location as string };
    };

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      upstream = await startUpstreamProvider(
        {
          'upstream-casey': { email: 'Casey.Clinician@example.org', emailVerified: true },
          'upstream-stranger': { email: 'stranger@example.org', emailVerified: true },
          'upstream-unverified': { email: 'pat.patient@example.org', emailVerified: false },
        },
        `${base}/oauth/federated/callback`,
      );
      Object.assign(store.config, {
        port,
        baseUrl: base,
        logLevel: 'info',
        oidc: { issuer: upstream.issuer, clientId: upstream.clientId, clientSecret: upstream.clientSecret },
        // This community lets its stewards declare public health (they answer case reports); the other
        // roles keep the default table.
        rolePurposes: rolePurposesFromEnv('steward=HOPERAT+PUBHLTH', ROLES),
      });
      const logStream = new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) });
      t = await createTessera(store.config, { logStream });
      await t.app.listen({ port, host: '127.0.0.1' });
      const admin = await createClient(t.db, { name: 'test-admin', scope: 'system/*.cruds' });
      adminToken = await getToken(base, admin.clientId, admin.clientSecret as string);
      orgId = (await fhir('POST', 'Organization', adminToken, { resourceType: 'Organization', name: 'Riverside Clinic (synthetic)' })).body.id;
      for (const [key, family, given, birthDate] of [
        ['ada', 'Quillfeather', 'Ada', '1961-04-12'],
        ['ben', 'Quillfeather', 'Ben', '1990-09-30'],
        ['pat', 'Marchbank', 'Pat', '1975-02-03'],
      ]) {
        patients[key] = (await fhir('POST', 'Patient', adminToken, { resourceType: 'Patient', name: [{ family, given: [given] }], birthDate })).body.id;
      }
      const created = await tessera(['clients', 'create', ...data, '--name', 'Chart Viewer', '--scope', APP_SCOPE, '--redirect-uri', APP_REDIRECT], env);
      assert.equal(created.code, 0, created.stderr);
      app = JSON.parse(created.stdout);
      publicApp = await createClient(t.db, { name: 'Patient App', scope: APP_SCOPE, redirectUris: [APP_REDIRECT], public: true });
    });

    after(async () => {
      await t?.close();
      await upstream?.close();
      await dropTestSchema(store.config);
      store.cleanup();
    });

    it('discovery: SMART and OpenID configuration name endpoints under the configured base URL, not the Host header', async () => {
      const smart = (await (await fetch(`${base}/fhir/.well-known/smart-configuration`, { headers: { host: 'evil.example' } })).json()) as any;
      assert.equal(smart.authorization_endpoint, `${base}/oauth/authorize`);
      assert.equal(smart.token_endpoint, `${base}/oauth/token`);
      assert.equal(smart.revocation_endpoint, `${base}/oauth/revoke`);
      assert.equal(smart.introspection_endpoint, `${base}/oauth/introspect`);
      assert.deepEqual(smart.code_challenge_methods_supported, ['S256']);
      for (const grant of ['authorization_code', 'refresh_token', 'client_credentials']) assert.ok(smart.grant_types_supported.includes(grant));
      for (const c of ['launch-standalone', 'client-public', 'client-confidential-symmetric', 'sso-openid-connect', 'context-standalone-patient', 'permission-patient', 'permission-user', 'permission-v2']) {
        assert.ok(smart.capabilities.includes(c), c);
      }
      const openid = (await (await fetch(`${base}/.well-known/openid-configuration`)).json()) as any;
      assert.equal(openid.issuer, base);
      const jwks = (await (await fetch(openid.jwks_uri)).json()) as any;
      assert.equal(jwks.keys[0].kty, 'EC');
      assert.equal(jwks.keys[0].d, undefined);
    });

    it('users add (CLI): staff get a Practitioner and PractitionerRole at their Organization; a patient is linked to their Patient', async () => {
      const added = await tessera(['users', 'add', ...data, '--name', 'Casey Clinician', '--email', 'Casey.Clinician@example.org', '--role', 'clinician', '--organization', orgId, '--password-stdin'], env, `${PASSWORD}\n`);
      assert.equal(added.code, 0, added.stderr);
      clinician = JSON.parse(added.stdout);
      assert.equal((clinician as any).email, 'casey.clinician@example.org');
      assert.match(clinician.fhirUser, /^Practitioner\//);
      const practitioner = await fhir('GET', clinician.fhirUser, adminToken);
      assert.equal(practitioner.status, 200);
      const roles = await fhir('GET', `PractitionerRole?practitioner=${clinician.fhirUser}`, adminToken);
      assert.equal(roles.body.entry.length, 1);
      assert.equal(roles.body.entry[0].resource.organization.reference, `Organization/${orgId}`);
      assert.equal(roles.body.entry[0].resource.code[0].coding[0].code, 'clinician');

      // The rest through the same directory module the command calls (each CLI start costs seconds).
      patientUser = await addUser(t.repo, { name: 'Pat Marchbank', email: 'pat.patient@example.org', role: 'patient', organization: orgId, patient: patients.pat, password: PASSWORD });
      assert.equal((patientUser as any).fhirUser, `Patient/${patients.pat}`);
      const refused = (input: Partial<Parameters<typeof addUser>[1]>, message: RegExp) =>
        assert.rejects(() => addUser(t.repo, { name: 'X', email: 'x@example.org', role: 'clinician', organization: orgId, ...input }), message);
      await refused({ organization: 'no-such-org' }, /No Organization\/no-such-org/);
      await refused({ email: 'casey.clinician@EXAMPLE.org' }, /exists/);
      await refused({ role: 'superuser' }, /Unknown role "superuser"/);
      await refused({ role: 'patient' }, /needs --patient/);
      await refused({ role: 'patient', patient: 'no-such-patient' }, /No Patient\/no-such-patient/);
      await refused({ password: 'short' }, /at least 12 characters/);
      const list = await tessera(['users', 'list', ...data], env);
      assert.match(list.stdout, /casey\.clinician@example\.org  clinician/);
      assert.match(list.stdout, /2 user\(s\)/);
      // The password is stored as a memory-hard hash, never in clear.
      const [row] = await t.db.query<{ password_hash: string }>('SELECT password_hash FROM app_user WHERE id = ?', [clinician.id]);
      assert.match(row.password_hash, /^scrypt\$15\$8\$3\$/);
      assert.ok(!row.password_hash.includes(PASSWORD));
    });

    it("the launch-patient picker searches as the signed-in user: a patient whose consent denies the user's organization is not listed, and the search is audited with the user", async () => {
      const hidden = (await fhir('POST', 'Patient', adminToken, { resourceType: 'Patient', name: [{ family: 'Nolisting', given: ['Hana'] }], birthDate: '1977-01-02' })).body.id;
      const deny = { resourceType: 'Consent', status: 'active', scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] }, category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }], patient: { reference: `Patient/${hidden}` }, policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] }, provision: { type: 'deny', actor: [{ role: { text: 'recipient' }, reference: { reference: `Organization/${orgId}` } }] } };
      assert.equal((await fhir('POST', 'Consent', adminToken, deny)).status, 201);
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url } = await startLaunch(config);
      const { browser, res } = await signIn(url, { email: 'casey.clinician@example.org', password: PASSWORD });
      assert.match(res.html, /Choose a patient/);
      const found = await browser.fetch(`${base}/oauth/authorize/patient`, { form: { state: hiddenField(res.html, 'state'), action: 'search', name: 'Nolisting' } });
      assert.equal(found.status, 200);
      assert.doesNotMatch(found.html, new RegExp(hidden), 'the denied patient is not offered');
      const chosen = await browser.fetch(`${base}/oauth/authorize/patient`, { form: { state: hiddenField(found.html, 'state'), action: 'choose', patient: hidden } });
      assert.ok(!chosen.location, 'nor can it be chosen by id');
    });

    it('password sign-in through a whole SMART launch driven by openid-client: patient selection, id_token, access token facts', async () => {
      const { tokens, config, checks, location } = await launch('casey.clinician@example.org', { patientName: 'Quillfeather', extra: { purpose_of_use: 'TREAT' } });
      assert.ok(tokens.patient === patients.ada || tokens.patient === patients.ben);
      assert.equal(tokens.scope, APP_SCOPE);
      // The library validated the id_token (signature against the JWKS, iss, aud, nonce); check the SMART claims.
      const idClaims = tokens.claims()!;
      assert.equal(idClaims.iss, base);
      assert.equal(idClaims.aud, app.clientId);
      assert.equal(idClaims.sub, clinician.id);
      assert.equal(idClaims.nonce, checks.expectedNonce);
      assert.equal(idClaims.fhirUser, `${base}/fhir/${clinician.fhirUser}`);
      assert.ok(tokens.refresh_token);
      const claims = decodeJwt(tokens.access_token);
      assert.equal(claims.sub, clinician.id);
      assert.equal(claims.client_id, app.clientId);
      assert.equal(claims.fhirUser, clinician.fhirUser);
      assert.equal(claims.role, 'clinician');
      assert.equal(claims.organization, `Organization/${orgId}`);
      assert.equal(claims.patient, tokens.patient);
      assert.equal(claims.purpose_of_use, 'TREAT');
      assert.ok(claims.jti);
      const context = await t.tokens.verify(tokens.access_token);
      assert.deepEqual(context.user, { id: clinician.id, fhirUser: clinician.fhirUser, role: 'clinician' });
      assert.equal(context.patient, tokens.patient);
      assert.equal(context.purposeOfUse, 'TREAT');
      assert.equal(context.organization, `Organization/${orgId}`);
      assert.equal(context.tokenId, claims.jti);
      assert.equal(context.clientId, app.clientId);
      const read = await fhir('GET', `Patient/${tokens.patient}`, tokens.access_token);
      assert.equal(read.status, 200);
      // The code was single-use: redeeming it again fails.
      await assert.rejects(() => oidc.authorizationCodeGrant(config, new URL(location), checks), oauthError('invalid_grant'));
    });

    it('the sign-in pages: lang, labels, CSP, no caching; a form posted without the browser cookie is refused (CSRF)', async () => {
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url } = await startLaunch(config);
      const browser = new TestBrowser();
      const page = await browser.fetch(url);
      assert.match(page.html, /<html lang="en">/);
      assert.match(page.html, /<label for="password">/);
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'.*frame-ancestors 'none'/);
      assert.equal(page.headers.get('cache-control'), 'no-store');
      const otherBrowser = new TestBrowser();
      const forged = await otherBrowser.fetch(`${base}/oauth/authorize`, { form: { state: hiddenField(page.html, 'state'), email: 'casey.clinician@example.org', password: PASSWORD } });
      assert.equal(forged.status, 400);
      assert.equal(forged.location, undefined);
    });

    it('wrong password is refused: the form again, no code', async () => {
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url } = await startLaunch(config);
      const { res } = await signIn(url, { email: 'casey.clinician@example.org', password: 'not the password' });
      assert.equal(res.status, 200);
      assert.equal(res.location, undefined);
      assert.match(res.html, /role="alert"/);
      const unknown = await signIn(url, { email: 'nobody@example.org', password: PASSWORD });
      assert.equal(unknown.res.location, undefined);
      // Reset the failure count for the tests that follow (a success resets it).
      await launch('casey.clinician@example.org', { scope: 'openid user/*.rs' });
    });

    it('authorization requests are validated: unregistered redirect_uri shown, not followed; bad PKCE, aud or purpose_of_use sent back as errors', async () => {
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url } = await startLaunch(config);
      const elsewhere = new URL(url);
      elsewhere.searchParams.set('redirect_uri', 'https://attacker.example/cb');
      const shown = await fetch(elsewhere, { redirect: 'manual' });
      assert.equal(shown.status, 400);
      assert.equal(shown.headers.get('location'), null);
      const cases: [string, string | null, string][] = [
        ['code_challenge_method', 'plain', 'invalid_request'],
        ['code_challenge', null, 'invalid_request'],
        ['aud', 'https://other.example/fhir', 'invalid_request'],
        ['purpose_of_use', 'MARKETING', 'invalid_request'],
        ['scope', 'system/*.cruds', 'invalid_scope'],
        ['response_type', 'token', 'unsupported_response_type'],
      ];
      for (const [name, value, error] of cases) {
        const bad = new URL(url);
        if (value === null) bad.searchParams.delete(name);
        else bad.searchParams.set(name, value);
        const res = await fetch(bad, { redirect: 'manual' });
        assert.equal(res.status, 302, name);
        const back = new URL(res.headers.get('location') as string);
        assert.equal(`${back.origin}${back.pathname}`, APP_REDIRECT);
        assert.equal(back.searchParams.get('error'), error, name);
        assert.equal(back.searchParams.get('state'), url.searchParams.get('state'));
      }
    });

    it('PKCE: a wrong code_verifier is refused, and the code is spent', async () => {
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url, checks } = await startLaunch(config, 'openid user/*.rs');
      const { res } = await signIn(url, { email: 'casey.clinician@example.org', password: PASSWORD });
      assert.ok(res.location);
      await assert.rejects(() => oidc.authorizationCodeGrant(config, new URL(res.location!), { ...checks, pkceCodeVerifier: oidc.randomPKCECodeVerifier() }), oauthError('invalid_grant'));
      await assert.rejects(() => oidc.authorizationCodeGrant(config, new URL(res.location!), checks), oauthError('invalid_grant'));
    });

    it("a patient user's token carries their own Patient as context and only patient/ scopes (public client, no secret)", async () => {
      const config = await clientConfig(publicApp.clientId);
      const { tokens } = await launch('pat.patient@example.org', { config });
      assert.equal(tokens.patient, patients.pat);
      assert.equal(tokens.scope, 'openid fhirUser launch/patient offline_access online_access patient/*.rs');
      const context = await t.tokens.verify(tokens.access_token);
      assert.equal(context.patient, patients.pat);
      assert.deepEqual(context.user, { id: patientUser.id, fhirUser: `Patient/${patients.pat}`, role: 'patient' });
      assert.ok(context.scopes.every((s) => s.context === 'patient'));
    });

    it('refresh tokens rotate: the new one works, the old one is refused, and replaying it revokes the grant', async () => {
      const { tokens, config } = await launch('casey.clinician@example.org', { scope: 'openid offline_access user/*.rs' });
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token);
      assert.equal((await fhir('GET', 'Patient', refreshed.access_token)).status, 200);
      await assert.rejects(() => oidc.refreshTokenGrant(config, tokens.refresh_token!), oauthError('invalid_grant'));
      // The replay marks the chain as stolen: the rotated token and its access token stop too.
      await assert.rejects(() => oidc.refreshTokenGrant(config, refreshed.refresh_token!), oauthError('invalid_grant'));
      assert.equal((await fhir('GET', 'Patient', refreshed.access_token)).status, 401);
      const [row] = await t.db.query<{ n: number }>('SELECT COUNT(*) AS n FROM oauth_refresh_token WHERE token_hash = ?', [refreshed.refresh_token!]);
      assert.equal(Number(row.n), 0, 'refresh tokens are stored hashed');
    });

    it('revocation (RFC 7009): a revoked access token or refresh token stops at once', async () => {
      const first = await launch('casey.clinician@example.org', { scope: 'openid offline_access user/*.rs' });
      assert.equal((await fhir('GET', 'Patient', first.tokens.access_token)).status, 200);
      await oidc.tokenRevocation(first.config, first.tokens.access_token);
      assert.equal((await fhir('GET', 'Patient', first.tokens.access_token)).status, 401);
      // Revoking the refresh token ends its grant: the refresh token and the grant's access tokens.
      const second = await launch('casey.clinician@example.org', { scope: 'openid offline_access user/*.rs' });
      await oidc.tokenRevocation(second.config, second.tokens.refresh_token!);
      await assert.rejects(() => oidc.refreshTokenGrant(second.config, second.tokens.refresh_token!), oauthError('invalid_grant'));
      assert.equal((await fhir('GET', 'Patient', second.tokens.access_token)).status, 401);
    });

    it('introspection (RFC 7662): active with the token facts for a confidential client; inactive once revoked; refused to public clients', async () => {
      const { tokens, config } = await launch('casey.clinician@example.org', { patientName: 'Ada' });
      const active = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.equal(active.active, true);
      assert.equal(active.sub, clinician.id);
      assert.equal(active.client_id, app.clientId);
      assert.equal(active.patient, patients.ada);
      assert.equal(active.fhirUser, clinician.fhirUser);
      const refresh = await oidc.tokenIntrospection(config, tokens.refresh_token!);
      assert.equal(refresh.active, true);
      await oidc.tokenRevocation(config, tokens.access_token);
      assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
      assert.equal((await oidc.tokenIntrospection(config, 'not-a-token')).active, false);
      const publicConfig = await clientConfig(publicApp.clientId);
      await assert.rejects(() => oidc.tokenIntrospection(publicConfig, tokens.refresh_token!), oauthError('invalid_client'));
    });

    it('TOTP: once enrolled (CLI), sign-in needs the current code from the authenticator', async () => {
      const email = 'tia.totp@example.org';
      await addUser(t.repo, { name: 'Tia Totp', email, role: 'steward', organization: orgId, password: PASSWORD });
      const enrolled = await tessera(['users', 'totp', ...data, email], env);
      assert.equal(enrolled.code, 0, enrolled.stderr);
      const authenticator = URI.parse(enrolled.stdout.trim());
      const config = await clientConfig(app.clientId, app.clientSecret);
      const withoutCode = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: PASSWORD });
      assert.equal(withoutCode.res.location, undefined);
      const wrongCode = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: PASSWORD, totp: String((Number(authenticator.generate()) + 1) % 1_000_000).padStart(6, '0') });
      assert.equal(wrongCode.res.location, undefined);
      const code = authenticator.generate();
      const { tokens } = await launch(email, { scope: 'openid user/*.rs', totp: code, config });
      assert.equal(decodeJwt(tokens.access_token).role, 'steward');
      // The same code cannot be used twice (the very code: a new 30 s step may have begun meanwhile).
      const replay = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: PASSWORD, totp: code });
      assert.equal(replay.res.location, undefined);
    });

    it('lockout: after 5 failures even the right password is refused, until an administrator enables the user again (what `users enable` runs)', async () => {
      const email = 'lee.lockout@example.org';
      await addUser(t.repo, { name: 'Lee Lockout', email, role: 'interface-analyst', organization: orgId, password: PASSWORD });
      const config = await clientConfig(app.clientId, app.clientSecret);
      for (let i = 0; i < 5; i++) {
        const { res } = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: `wrong ${i}` });
        assert.equal(res.location, undefined);
      }
      const locked = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: PASSWORD });
      assert.equal(locked.res.location, undefined, 'the right password is refused while locked');
      const [row] = await t.db.query<{ locked_until: number }>("SELECT locked_until FROM app_user WHERE email = ?", [email]);
      const minutes = (Number(row.locked_until) - Date.now()) / 60_000;
      assert.ok(minutes > 14 && minutes <= 15, `locked for ${minutes} minutes`);
      await setUserDisabled(t.db, (await findUserByEmail(t.db, email))!.id, false);
      await launch(email, { scope: 'openid user/*.rs', config });
    });

    it('a user disabled by the CLI (another process) is refused at sign-in, and their access token gets 401 at once', async () => {
      const email = 'dana.disabled@example.org';
      await addUser(t.repo, { name: 'Dana Disabled', email, role: 'clinician', organization: orgId, password: PASSWORD });
      const { tokens, config } = await launch(email, { scope: 'openid offline_access user/*.rs' });
      assert.equal((await fhir('GET', 'Patient', tokens.access_token)).status, 200);
      const disabled = await tessera(['users', 'disable', ...data, email], env);
      assert.equal(disabled.code, 0, disabled.stderr);
      assert.equal((await fhir('GET', 'Patient', tokens.access_token)).status, 401);
      await assert.rejects(() => oidc.refreshTokenGrant(config, tokens.refresh_token!), oauthError('invalid_grant'));
      const again = await signIn((await startLaunch(config, 'openid user/*.rs')).url, { email, password: PASSWORD });
      assert.equal(again.res.location, undefined);
    });

    it('a client disabled by the CLI: its user tokens and client_credentials tokens get 401 at once, and it gets no new ones', async () => {
      const created = await createClient(t.db, { name: 'Short-lived App', scope: `${APP_SCOPE} system/Patient.rs`, redirectUris: [APP_REDIRECT] });
      const config = await clientConfig(created.clientId, created.clientSecret);
      const { tokens } = await launch('casey.clinician@example.org', { scope: 'openid user/*.rs', config });
      const backendToken = await getToken(base, created.clientId, created.clientSecret as string, 'system/Patient.rs');
      assert.equal((await fhir('GET', 'Patient', tokens.access_token)).status, 200);
      assert.equal((await fhir('GET', 'Patient', backendToken)).status, 200);
      const disabled = await tessera(['clients', 'disable', ...data, created.clientId], env);
      assert.equal(disabled.code, 0, disabled.stderr);
      assert.equal((await fhir('GET', 'Patient', tokens.access_token)).status, 401);
      assert.equal((await fhir('GET', 'Patient', backendToken)).status, 401);
      await assert.rejects(() => getToken(base, created.clientId, created.clientSecret as string), /401/);
      const page = await fetch((await startLaunch(config)).url, { redirect: 'manual' });
      assert.equal(page.status, 400);
    });

    it('client_credentials carries purpose_of_use into the token and AuthContext; an unknown purpose is invalid_request', async () => {
      const backend = await createClient(t.db, { name: 'Public Health Feed', scope: 'system/Patient.rs' });
      const form = (purpose: string) =>
        fetch(`${base}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: backend.clientId, client_secret: backend.clientSecret as string, purpose_of_use: purpose }).toString(),
        });
      const ok = (await (await form('PUBHLTH')).json()) as any;
      const context = await t.tokens.verify(ok.access_token);
      assert.equal(context.purposeOfUse, 'PUBHLTH');
      assert.equal(context.user, undefined);
      const bad = await form('CURIOSITY');
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as any).error, 'invalid_request');
    });

    it('purpose of use is bound: a client declares only its registered purposes, a user only those of their role', async () => {
      // A payer's claims system registered for payment only (the operator's `tessera clients create --purposes HPAYMT`).
      const payer = await createClient(t.db, { name: 'Payer Claims', scope: 'system/Patient.rs', purposes: ['HPAYMT'] });
      const token = (purpose: string) =>
        fetch(`${base}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: payer.clientId, client_secret: payer.clientSecret as string, purpose_of_use: purpose }).toString(),
        });
      assert.equal((await token('HPAYMT')).status, 200);
      const claimed = await token('TREAT');
      assert.equal(claimed.status, 400);
      assert.match(((await claimed.json()) as any).error_description, /not registered for this client/);
      // A clinician signing in cannot claim public health: the app gets access_denied, no code.
      const config = await clientConfig(app.clientId, app.clientSecret);
      const { url } = await startLaunch(config, 'openid user/*.rs', { purpose_of_use: 'PUBHLTH' });
      const { res } = await signIn(url, { email: 'casey.clinician@example.org', password: PASSWORD });
      const back = new URL(res.location as string);
      assert.equal(back.searchParams.get('error'), 'access_denied');
      assert.match(back.searchParams.get('error_description') ?? '', /clinician/);
      assert.equal(back.searchParams.get('code'), null);
    });

    it("the community's role table (TESSERA_ROLE_PURPOSES) decides what a role may declare; a bad table stops the start", async () => {
      await addUser(t.repo, { name: 'Sam Steward', email: 'sam.steward@example.org', role: 'steward', organization: orgId, password: PASSWORD });
      const config = await clientConfig(app.clientId, app.clientSecret);
      const declaring = async (email: string, purpose: string) => {
        const { url } = await startLaunch(config, 'openid user/*.rs', { purpose_of_use: purpose });
        return new URL((await signIn(url, { email, password: PASSWORD })).res.location as string);
      };
      const steward = await declaring('sam.steward@example.org', 'PUBHLTH');
      assert.ok(steward.searchParams.get('code'), `a steward may declare PUBHLTH here: ${steward}`);
      const refused = await declaring('sam.steward@example.org', 'TREAT');
      assert.equal(refused.searchParams.get('error'), 'access_denied');
      assert.match(refused.searchParams.get('error_description') ?? '', /steward user may declare \(HOPERAT, PUBHLTH\)/);
      // Roles the table does not name keep their defaults: a clinician still may not claim public health.
      assert.equal((await declaring('casey.clinician@example.org', 'PUBHLTH')).searchParams.get('error'), 'access_denied');
      assert.deepEqual(rolePurposesFromEnv('patient=', ROLES).patient, [], 'a role may be let declare none');
      assert.throws(() => rolePurposesFromEnv('auditor=HOPERAT', ROLES), /the role one of clinician/);
      assert.throws(() => rolePurposesFromEnv('clinician=TREAT+CURIOSITY', ROLES), /clinician: Unknown purpose of use "CURIOSITY"/);
    });

    it('federated sign-in with the community provider: a verified email maps to the directory user; an unknown identity is refused', async () => {
      const config = await clientConfig(app.clientId, app.clientSecret);
      const federated = async (account: string) => {
        upstream.signInAs(account);
        const { url, checks } = await startLaunch(config, 'openid user/*.rs');
        const browser = new TestBrowser();
        const page = await browser.fetch(url);
        assert.match(page.html, /action="\/oauth\/federated"/);
        const toProvider = await browser.fetch(`${base}/oauth/federated`, { form: { state: hiddenField(page.html, 'state') } });
        assert.ok(toProvider.location?.startsWith(upstream.issuer), toProvider.html);
        return { res: await browser.follow(toProvider.location!, APP_REDIRECT), checks };
      };
      const { res, checks } = await federated('upstream-casey');
      assert.ok(res.location?.startsWith(APP_REDIRECT), `${res.status} ${res.html.slice(0, 300)}`);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(res.location!), { ...checks, idTokenExpected: true });
      assert.equal(tokens.claims()!.sub, clinician.id);
      assert.equal(decodeJwt(tokens.access_token).role, 'clinician');
      const [linked] = await t.db.query<{ oidc_subject: string }>('SELECT oidc_subject FROM app_user WHERE id = ?', [clinician.id]);
      assert.equal(linked.oidc_subject, 'upstream-casey');

      const stranger = await federated('upstream-stranger');
      assert.equal(stranger.res.status, 403);
      assert.equal(stranger.res.location, undefined);
      // An email the provider has not verified does not map to the directory user who has it.
      const unverified = await federated('upstream-unverified');
      assert.equal(unverified.res.status, 403);
    });

    it('sign-in logs name users by id only: no emails, passwords or patient names', () => {
      const log = logLines.join('');
      assert.match(log, /"event":"sign-in"/);
      assert.match(log, /"event":"account-locked"/);
      for (const secret of [PASSWORD, 'casey.clinician@example.org', 'Quillfeather', 'lee.lockout']) assert.ok(!log.includes(secret), secret);
    });
  });
}
