import { createHmac } from 'node:crypto';

/** The header carrying the HMAC-SHA256 of the body under the subscription's secret: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-tessera-signature';

export function signatureOf(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * POSTs one notification Bundle to a rest-hook endpoint. A 2xx answer is a delivery; anything else
 * (an error status, a refused connection, the time limit) throws, and the delivery is retried.
 */
export async function postNotification(endpoint: string, body: string, options: { headers: string[]; secret?: string; timeoutMs: number }): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/fhir+json' };
  for (const header of options.headers) {
    const colon = header.indexOf(':');
    if (colon > 0) headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  if (options.secret) headers[SIGNATURE_HEADER] = signatureOf(options.secret, body);
  const res = await fetch(endpoint, { method: 'POST', headers, body, signal: AbortSignal.timeout(options.timeoutMs) });
  await res.arrayBuffer().catch(() => undefined);
  if (!res.ok) throw new Error(`the endpoint answered HTTP ${res.status}`);
}
