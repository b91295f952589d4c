import { execSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';

/** The machine a benchmark ran on, as the reports print it. */
export const MACHINE = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;

/**
 * The commit whose code this run measures, read when the benchmark starts (a long run must not report the
 * commit made while it ran), with "+changes" when src/ or bench/ differ from it.
 */
export const COMMIT = ((): string => {
  try {
    const head = execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim();
    const changed = execSync('git status --porcelain -- src bench', { encoding: 'utf8' }).trim();
    return changed ? `${head}+changes` : head;
  } catch {
    return 'unknown'; // not a checkout
  }
})();
