import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CandidatePairs } from '../src/mpi/candidate-pairs.js';

/**
 * The pairs the rebuild's re-clustering judges (global-reclustering.ts): records numbered in patient id
 * order, grouped by shared blocking key; each pair judged once however many keys its two records share.
 * Data: small hand-made groups, and 3 million pairs from random groups (more than the array's first
 * capacity; a Set of pair strings in their place stopped at 2^24 pairs, about a million records' worth).
 */
describe('CandidatePairs', () => {
  it('gives each pair of records that share any group once, lower number first, in order', () => {
    const pairs = new CandidatePairs(10);
    pairs.addGroup([3, 1, 7]);
    pairs.addGroup([7, 3]); // shared again under another key
    pairs.addGroup([9, 0]);
    pairs.addGroup([5]); // alone under a key: no pair
    assert.deepEqual([...pairs.distinct()], [
      [0, 9],
      [1, 3],
      [1, 7],
      [3, 7],
    ]);
  });

  it('holds millions of pairs, each distinct pair once', () => {
    const records = 200_000;
    const pairs = new CandidatePairs(records);
    const expected = new Set<string>();
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % records;
    for (let g = 0; g < 300_000; g++) {
      const group = Array.from({ length: 5 }, next);
      pairs.addGroup(group);
      if (g < 2_000) for (const a of group) for (const b of group) if (a < b) expected.add(`${a}|${b}`);
    }
    let count = 0;
    let previous = -1;
    const seen = new Set<string>();
    for (const [a, b] of pairs.distinct()) {
      assert.ok(a < b);
      const code = a * records + b;
      assert.ok(code > previous, 'ascending, no repeats');
      previous = code;
      if (expected.has(`${a}|${b}`)) seen.add(`${a}|${b}`);
      count++;
    }
    assert.equal(seen.size, expected.size, 'every pair of the first groups is there');
    assert.ok(count > 2_500_000 && count <= 3_000_000, `${count} distinct pairs`);
  });
});
