import type { Subscription } from '@medplum/fhirtypes';
import { hideWriteOnly, WRITE_ONLY_VALUE } from './write-only-channel.js';

/** A FHIR write as the message log keeps it (src/participants/fhir-attribution.ts). */
export interface LoggedRequest {
  method: string;
  /** `Type/id`, as the log stores it. */
  path: string;
  body: unknown;
}

/**
 * The body of a participant's FHIR write as the message log may keep it: Subscriptions in it (the body,
 * or a Bundle's entries) with their write-only channel values hidden, as the stored resource has them,
 * and a JSON Patch of a Subscription with the values of its operations on the channel hidden. The log is
 * read by interface analysts, and FHIR messages are not replayed from it, so nothing needs the values.
 */
export function withWriteOnlyHidden(request: LoggedRequest): unknown {
  const { method, path, body } = request;
  if (method === 'PATCH' && path.startsWith('Subscription/') && Array.isArray(body)) {
    return body.map((op: unknown) => (isChannelOperation(op) ? { ...op, value: WRITE_ONLY_VALUE } : op));
  }
  const bundle = body as { resourceType?: unknown; entry?: unknown } | undefined;
  if (bundle?.resourceType === 'Bundle' && Array.isArray(bundle.entry)) {
    return { ...bundle, entry: bundle.entry.map((e: unknown) => (e && typeof e === 'object' && 'resource' in e ? { ...e, resource: hiddenIn(e.resource) } : e)) };
  }
  return hiddenIn(body);
}

function isChannelOperation(op: unknown): op is { path: string; value?: unknown } {
  const path = (op as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' && (path === '/channel' || path.startsWith('/channel/')) && 'value' in (op as object);
}

function hiddenIn(resource: unknown): unknown {
  const sub = resource as Subscription | undefined;
  if (sub?.resourceType !== 'Subscription' || !sub.channel || typeof sub.channel !== 'object') return resource;
  try {
    const { channel } = hideWriteOnly(sub.channel);
    return channel === sub.channel ? sub : { ...sub, channel };
  } catch {
    // A channel of the wrong shape (the write is refused as invalid): none of it is kept.
    return { ...sub, channel: WRITE_ONLY_VALUE };
  }
}
