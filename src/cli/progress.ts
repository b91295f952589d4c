import cliProgress from 'cli-progress';

/** A progress bar on stderr (stdout stays clean for machine-readable output). */
/** `total` may be unknown at first (0) and given with a later update; `unit` names what is counted. */
export function createProgressBar(label: string, total: number, unit = 'resources'): { update(done: number, count: number, total?: number): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {resources} ${unit} | {rate}/s | ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      noTTYOutput: !process.stderr.isTTY,
      notTTYSchedule: 5000,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(Math.max(total, 1), 0, { resources: 0, rate: 0 });
  return {
    update(done, resources, newTotal) {
      if (newTotal !== undefined) {
        bar.setTotal(Math.max(newTotal, 1));
      }
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, { resources, rate: Math.round(resources / Math.max(seconds, 0.001)) });
    },
    stop() {
      bar.stop();
    },
  };
}
