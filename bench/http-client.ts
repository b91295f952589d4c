import http from 'node:http';

/**
 * A minimal keep-alive HTTP GET for latency series. Node's fetch (undici) added about 0.5 ms at the median
 * and most of the tail to every request on this machine (GET /healthz: p50 0.96 / p99 6.36 ms with fetch,
 * 0.37 / 2.45 ms with this), which would be measured as the server's latency.
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

export function httpGet(url: string, headers: Record<string, string>): Promise<number> {
  return httpRequest('GET', url, headers).then((r) => r.status);
}

/** A keep-alive request that also returns the body (for POSTed operations such as $match). */
export function httpRequest(method: string, url: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/fhir+json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A client-credentials access token from a Tessera server; `extra` adds form fields (e.g. purpose_of_use). */
export async function clientToken(baseUrl: string, client: { clientId: string; clientSecret?: string }, extra: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client.clientId, client_secret: client.clientSecret as string, ...extra }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}
