import cliProgress from 'cli-progress';

/** A progress bar on stderr (stdout stays clean for machine-readable output). */
export function createProgressBar(label: string, total: number): { update(done: number, resources: number): void; stop(): void } {
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} [{bar}] {percentage}% | {resources} resources | {rate}/s | ETA {eta_formatted}`,
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
    update(done, resources) {
      const seconds = (Date.now() - started) / 1000;
      bar.update(done, { resources, rate: Math.round(resources / Math.max(seconds, 0.001)) });
    },
    stop() {
      bar.stop();
    },
  };
}
