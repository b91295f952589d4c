import type { Server } from 'node:http';

/**
 * The origin (scheme, host, port) of the address the server listens on. Links the server writes (token
 * endpoint, Location, Bundle links) use it when no public base URL is configured, never the request's
 * Host header, which the client chooses: a forged Host would otherwise point clients, and their
 * credentials, at another server.
 */
export function listenOrigin(server: Server): string {
  const address = server.address();
  if (!address || typeof address === 'string') {
    return 'http://localhost';
  }
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${host}:${address.port}`;
}
