/**
 * npx tsx bench/profile-summary.ts FILE.cpuprofile [--top 40] [--filter src/notify]
 *
 * Self time per function (name, file, line) of a CPU profile, largest first, with each one's share of
 * the samples; the same summed per file; and total time per function (itself and what it called, within
 * one synchronous stretch: a function's share after an `await` is counted under whoever resumed it).
 */
import { readFileSync } from 'node:fs';
import { arg } from './args.js';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[]; }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[]; }

const profile = JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile;
const top = Number(arg('top', '40'));
const filter = arg('filter', '');
const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const fileOf = (f: Node['callFrame']) => f.url.replace(/^file:\/\/.*?\/(src|bench|test|node_modules)\//, '$1/') || '(native)';
const nameOf = (f: Node['callFrame']) => `${f.functionName || '(anonymous)'} ${fileOf(f)}:${f.lineNumber + 1}`;
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
const inclusive = new Map<string, number>();
const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);
let total = 0;
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  const f = frames.get(id);
  if (!f) return;
  total += us;
  add(byFunction, nameOf(f), us);
  add(byFile, fileOf(f), us);
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) seen.add(nameOf(frames.get(n) as Node['callFrame']));
  for (const name of seen) add(inclusive, name, us);
});
const print = (title: string, map: Map<string, number>) => {
  if (process.stdout.destroyed) return;
  process.stdout.write(`${title} (total ${(total / 1000).toFixed(0)} ms)\n`);
  for (const [k, us] of [...map].filter(([k]) => k.includes(filter)).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`${(us / 1000).toFixed(0).padStart(8)} ms ${((us / total) * 100).toFixed(1).padStart(5)} %  ${k}\n`);
  }
};
print('self time per function', byFunction);
print('self time per file', byFile);
print('total time per function', inclusive);
