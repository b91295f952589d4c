import type { FastifyInstance } from 'fastify';

/**
 * The server's public base URL: TESSERA_BASE_URL when configured, else the address the server is bound
 * to. Never the request's Host header, which the caller chooses: the OAuth issuer, the endpoints in the
 * discovery documents and the redirect targets must not follow it.
 */
export function publicBaseUrl(app: FastifyInstance, configured: string | undefined): string {
  if (configured) return configured.replace(/\/$/, '');
  const address = app.server.address();
  if (address && typeof address === 'object') {
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }
  return 'http://localhost';
}
