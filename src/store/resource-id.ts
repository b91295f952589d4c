import { randomFillSync } from 'node:crypto';

let lastMs = 0;
let sequence = 0;
/** Random bytes drawn 4 KiB at a time: one call per id would cost a system call each (about 3 % of ingest). */
const pool = Buffer.alloc(4096);
let poolOffset = pool.length;

function randomBlock(): Buffer {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const block = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  poolOffset += 16;
  return block;
}

/**
 * A new server-assigned resource id: a UUID version 7 (RFC 9562), whose first 48 bits are the creation
 * time in milliseconds, followed by a 12-bit sequence within the millisecond and random bits.
 *
 * Why not a random (v4) UUID: every index that holds the id (the primary keys, the per-resource owner
 * indexes, and each search lookup index, which ends with the id) then receives its new rows at random
 * places, so a bulk load dirties pages all over ever-larger B-trees. Time-ordered ids land at the right
 * edge of those indexes, which keeps the pages a load touches few and hot (docs/decisions/0008).
 * Ids stay unguessable enough for references (74 random bits) and carry no patient information.
 */
export function newResourceId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    sequence = 0;
  } else if (++sequence > 0xfff) {
    lastMs += 1; // more than 4,096 ids in one millisecond: borrow the next one, keeping ids increasing
    sequence = 0;
  }
  const bytes = randomBlock();
  const ms = lastMs;
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff;
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff;
  bytes[2] = (ms >>> 24) & 0xff;
  bytes[3] = (ms >>> 16) & 0xff;
  bytes[4] = (ms >>> 8) & 0xff;
  bytes[5] = ms & 0xff;
  bytes[6] = 0x70 | (sequence >>> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
