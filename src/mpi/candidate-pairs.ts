/**
 * The distinct pairs among records numbered 0..n-1, gathered from many overlapping groups (the records
 * sharing each blocking key) and handed out once each, in order. A pair is one number, `a * n + b` with
 * a < b, kept in a typed array that is sorted once at the end: 8 bytes a pair. A Set of pair strings held
 * about 80 bytes a pair and stops at 2^24 entries, which an index of about a million records exceeds
 * (233,500 records already share 4.65 million pairs of blocking keys).
 */
export class CandidatePairs {
  private codes = new Float64Array(1 << 20);
  private length = 0;

  constructor(private readonly records: number) {
    // Exact in a double only while a * n + b stays below 2^53.
    if (records * records >= Number.MAX_SAFE_INTEGER) throw new Error(`too many records to pair: ${records}`);
  }

  /** Every pair of the group's records (their numbers). */
  addGroup(group: readonly number[]): void {
    for (let i = 0; i < group.length; i++) {
      for (let j = i + 1; j < group.length; j++) {
        if (group[i] === group[j]) continue;
        if (this.length === this.codes.length) this.grow();
        // No array per pair: this runs for every pair of every key group (millions in a large index).
        this.codes[this.length++] = Math.min(group[i], group[j]) * this.records + Math.max(group[i], group[j]);
      }
    }
  }

  /** Each distinct pair once, the lower number first, in ascending order of (a, b). */
  *distinct(): Generator<[a: number, b: number]> {
    const sorted = this.codes.subarray(0, this.length).sort();
    for (let i = 0; i < sorted.length; i++) {
      if (i > 0 && sorted[i] === sorted[i - 1]) continue;
      const a = Math.floor(sorted[i] / this.records);
      yield [a, sorted[i] - a * this.records];
    }
  }

  private grow(): void {
    const larger = new Float64Array(this.codes.length * 2);
    larger.set(this.codes);
    this.codes = larger;
  }
}
