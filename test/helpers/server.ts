import type { Resource } from '@medplum/fhirtypes';
import { createServer } from 'node:net';
import { createClient } from '../../src/security/clients.js';
import { setClearance } from '../../src/consent/clearance.js';
import { createTessera, type Tessera } from '../../src/server/tessera.js';
import { dropTestSchema, testConfig, type Backend } from './backends.js';

export interface HttpResult<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestServer {
  tessera: Tessera;
  url: string;
  base: string;
  token: string;
  /** A request to the FHIR API with the admin token (override with headers.authorization). */
  fhir<T = any>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<HttpResult<T>>;
  tokenFor(scope: string): Promise<string>;
  close(): Promise<void>;
}

export async function getToken(url: string, clientId: string, secret: string, scope?: string): Promise<string> {
  const res = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) }).toString(),
  });
  const json = (await res.json()) as { access_token: string };
  if (!res.ok) {
    throw new Error(`token request failed: ${res.status} ${JSON.stringify(json)}`);
  }
  return json.access_token;
}

/** A port free at the time of asking, for a server whose URL must be known before it starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts a real Tessera HTTP server over a fresh store of the given backend, on a free port (or on
 * `config.port` when the test chose one, e.g. to register its URL with an identity provider first).
 */
export async function startTestServer(backend: Backend, store = testConfig(backend)): Promise<TestServer> {
  const { config, cleanup } = store;
  const tessera = await createTessera(config);
  const address = await tessera.app.listen({ port: config.port || 0, host: '127.0.0.1' });
  const admin = await createClient(tessera.db, { name: 'test-admin', scope: 'system/*.cruds' });
  // The operator's admin client: cleared for every kind of sensitive data, as the demo's is.
  await setClearance(tessera.db, `client:${admin.clientId}`, ['*']);
  const token = await getToken(address, admin.clientId, admin.clientSecret as string);
  const server: TestServer = {
    tessera,
    url: address,
    base: `${address}/fhir`,
    token,
    async fhir(method, path, body, headers = {}) {
      const res = await fetch(`${address}/fhir${path.startsWith('/') || path === '' ? path : `/${path}`}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // leave as text
      }
      return { status: res.status, headers: res.headers, body: parsed as any };
    },
    async tokenFor(scope) {
      const client = await createClient(tessera.db, { name: `scoped-${scope}`, scope });
      return getToken(address, client.clientId, client.clientSecret as string);
    },
    async close() {
      await tessera.close();
      await dropTestSchema(config);
      cleanup();
    },
  };
  return server;
}

/** A test server with the master patient index on (every Patient written is matched and linked). */
export async function startMpiTestServer(backend: Backend): Promise<TestServer> {
  const store = testConfig(backend);
  store.config.mpi = true;
  return startTestServer(backend, store);
}

export function ref(resource: Resource): string {
  return `${resource.resourceType}/${resource.id}`;
}
