import { fhirError, type FhirError } from '../fhir/outcome.js';

/** A request refused for its client's rate: the 429 to answer and its Retry-After (seconds). */
export interface Throttled {
  retryAfter: number;
  error: FhirError;
}

/**
 * Requests per minute per client: a fixed one-minute window, counted in memory (one process). A client
 * over its limit is told how long until the window turns. At a window's edge a client can get up to
 * twice the limit through within a few seconds; the limit is a guard against runaway clients, not a quota.
 */
export class ClientRateLimiter {
  private window = 0;
  private readonly counts = new Map<string, number>();

  constructor(readonly perMinute: number) {}

  /** Counts one request; answers the seconds to wait when the client is over its limit, else undefined. */
  take(clientId: string, now = Date.now()): number | undefined {
    const window = Math.floor(now / 60_000);
    if (window !== this.window) {
      // Counts of the previous minute are dropped all at once: the map never holds more than a minute of clients.
      this.window = window;
      this.counts.clear();
    }
    const count = (this.counts.get(clientId) ?? 0) + 1;
    this.counts.set(clientId, count);
    return count > this.perMinute ? Math.ceil(((window + 1) * 60_000 - now) / 1000) : undefined;
  }

  /** Counts one request of the client; the refusal to answer when it is over its limit. */
  throttle(clientId: string): Throttled | undefined {
    const wait = this.take(clientId);
    if (wait === undefined) return undefined;
    return { retryAfter: wait, error: fhirError(429, 'throttled', `Too many requests: this client may send ${this.perMinute} a minute; retry after ${wait} s`) };
  }
}
