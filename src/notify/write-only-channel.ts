import type { Subscription, SubscriptionChannel } from '@medplum/fhirtypes';
import { fhirError } from '../fhir/outcome.js';

/** Tessera's extension holding a rest-hook's HMAC signing secret. */
export const SIGNING_SECRET = 'http://tessera-hie.org/fhir/StructureDefinition/signing-secret';
/** What a stored Subscription shows instead of a write-only value (write it back unchanged to keep the value). */
export const WRITE_ONLY_VALUE = '(write-only: kept by the server)';

/** A notify_subscription column that holds a write-only part of the channel (as text). */
export type WriteOnlyColumn = 'secret' | 'headers';

/**
 * A part of a Subscription's channel that the server keeps and never shows: a client that may read
 * Subscriptions must not learn it. The signing secret would let it sign notifications as Tessera;
 * `channel.header` lines carry the receiver's own credentials (an `Authorization: Bearer ...`).
 */
interface WriteOnlyPart {
  column: WriteOnlyColumn;
  /** The part's value in a channel as its column stores it; undefined when the channel has none. */
  read(channel: SubscriptionChannel): string | undefined;
  /** The channel with the value replaced by the placeholder. */
  hide(channel: SubscriptionChannel): SubscriptionChannel;
}

const PARTS: WriteOnlyPart[] = [
  {
    column: 'secret',
    read: (channel) => channel.extension?.find((e) => e.url === SIGNING_SECRET)?.valueString || undefined,
    hide: (channel) => ({ ...channel, extension: channel.extension?.map((e) => (e.url === SIGNING_SECRET ? { url: SIGNING_SECRET, valueString: WRITE_ONLY_VALUE } : e)) }),
  },
  {
    column: 'headers',
    read: (channel) => (channel.header?.length ? JSON.stringify(channel.header) : undefined),
    // One placeholder for all the lines: not even how many there are is shown.
    hide: (channel) => ({ ...channel, header: [WRITE_ONLY_VALUE] }),
  },
];

/** The value of a part written back as read (the placeholder), in its column's form. */
const placeholderOf = (part: WriteOnlyPart, channel: SubscriptionChannel) => part.read(part.hide(channel));

/** Write-only values taken out of a Subscription before it is stored, by column. */
export type TakenValues = Partial<Record<WriteOnlyColumn, string>>;

/**
 * A channel with every write-only value it carries replaced by the placeholder, and the values taken
 * (placeholders already there stay as they are). Never refuses: it also serves to hide values in
 * versions stored before they were write-only (scrub-write-only-history.ts).
 */
export function hideWriteOnly(channel: SubscriptionChannel): { channel: SubscriptionChannel; taken: TakenValues } {
  const taken: TakenValues = {};
  for (const part of PARTS) {
    const value = part.read(channel);
    if (value === undefined || value === placeholderOf(part, channel)) continue;
    taken[part.column] = value;
    channel = part.hide(channel);
  }
  return { channel, taken };
}

/**
 * Takes the write-only values out of a Subscription being written: returns the Subscription to store
 * (placeholders in their place) and the values, which only notify_subscription keeps. A placeholder
 * written back is left as it is (the value kept stays: `keptValues`).
 */
export function takeWriteOnly(sub: Subscription): { stored: Subscription; taken: TakenValues } {
  const header = sub.channel.header;
  if (header && header.length > 1 && header.includes(WRITE_ONLY_VALUE)) {
    throw fhirError(422, 'invalid', `Subscription.channel.header: write "${WRITE_ONLY_VALUE}" back alone to keep the headers, or give every header line`);
  }
  const { channel, taken } = hideWriteOnly(sub.channel);
  return { stored: channel === sub.channel ? sub : { ...sub, channel }, taken };
}

/**
 * The write-only columns of notify_subscription after a write of `channel` (as stored): what `taken`
 * holds, else the kept value where the placeholder was written back, else what the channel carries
 * (nothing: the value is removed; or the value itself, for a write that did not pass `takeWriteOnly`:
 * every path runs it today, bulk loads included, since they send Subscriptions the ordinary way).
 */
export function keptValues(channel: SubscriptionChannel, taken: TakenValues, existing: Partial<Record<WriteOnlyColumn, string | null>> | undefined): Record<WriteOnlyColumn, string | null> {
  const out = {} as Record<WriteOnlyColumn, string | null>;
  for (const part of PARTS) {
    const value = part.read(channel);
    out[part.column] = taken[part.column] ?? (value !== undefined && value === placeholderOf(part, channel) ? (existing?.[part.column] ?? null) : (value ?? null));
  }
  return out;
}
