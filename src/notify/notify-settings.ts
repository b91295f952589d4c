/** How delivery behaves (environment variables; docs/notifications.md). */
export interface NotifySettings {
  /** Delivery workers inside `tessera serve` (TESSERA_NOTIFY=off turns them off; the outbox is written regardless). */
  workers: boolean;
  /** How often an idle worker looks for work, ms (TESSERA_NOTIFY_POLL_MS, default 200). */
  pollMs: number;
  /**
   * How long a worker woken by a commit waits before its round, so that the commits of a busy intake
   * share one, ms (TESSERA_NOTIFY_WAKE_DELAY_MS, default 25; 0: at once).
   */
  wakeDelayMs: number;
  /**
   * The shortest time from the start of one woken round to the start of the next, ms
   * (TESSERA_NOTIFY_ROUND_INTERVAL_MS, default 100; 0: none): while commits keep coming, they share rounds
   * of this spacing (and each round's statements); an idle worker's first round still waits only
   * `wakeDelayMs` (decision 0052).
   */
  roundIntervalMs: number;
  /** First retry delay, doubled at each failure up to retryMaxMs (TESSERA_NOTIFY_RETRY_BASE_MS, default 1 s). */
  retryBaseMs: number;
  /** Longest retry delay (TESSERA_NOTIFY_RETRY_MAX_MS, default 5 min). */
  retryMaxMs: number;
  /** Failed attempts after which a delivery goes to the dead letters (TESSERA_NOTIFY_MAX_ATTEMPTS, default 12, about 30 min). */
  maxAttempts: number;
  /** How long a worker holds a subscription it delivers for before another may take it over, ms (TESSERA_NOTIFY_LEASE_MS, default 30 s). */
  leaseMs: number;
  /** One attempt's time limit, ms (TESSERA_NOTIFY_TIMEOUT_MS, default 10 s). */
  timeoutMs: number;
  /** How long delivered events stay for $events, hours (TESSERA_NOTIFY_RETAIN_HOURS, default 168). */
  retainHours: number;
  /**
   * Whether a message forwarded over MLLP keeps the sender's patient identifiers as further PID-3
   * repetitions after the subscriber's own (TESSERA_NOTIFY_FORWARD_SENDER_IDS=on: the community allows
   * participants to see each other's MRNs). Default off.
   */
  forwardSenderIds: boolean;
}

function num(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!(n > 0)) throw new Error(`${name} must be a positive number, not "${value}"`);
  return n;
}

function onOff(value: string | undefined, name: string): boolean {
  if (value === undefined || value === '' || value === 'off') return false;
  if (value === 'on') return true;
  throw new Error(`${name} must be on or off, not "${value}"`);
}

export function notifySettingsFromEnv(env: NodeJS.ProcessEnv = process.env): NotifySettings {
  return {
    workers: env.TESSERA_NOTIFY !== 'off',
    pollMs: num(env.TESSERA_NOTIFY_POLL_MS, 200, 'TESSERA_NOTIFY_POLL_MS'),
    wakeDelayMs: env.TESSERA_NOTIFY_WAKE_DELAY_MS === '0' ? 0 : num(env.TESSERA_NOTIFY_WAKE_DELAY_MS, 25, 'TESSERA_NOTIFY_WAKE_DELAY_MS'),
    roundIntervalMs: env.TESSERA_NOTIFY_ROUND_INTERVAL_MS === '0' ? 0 : num(env.TESSERA_NOTIFY_ROUND_INTERVAL_MS, 100, 'TESSERA_NOTIFY_ROUND_INTERVAL_MS'),
    retryBaseMs: num(env.TESSERA_NOTIFY_RETRY_BASE_MS, 1000, 'TESSERA_NOTIFY_RETRY_BASE_MS'),
    retryMaxMs: num(env.TESSERA_NOTIFY_RETRY_MAX_MS, 300_000, 'TESSERA_NOTIFY_RETRY_MAX_MS'),
    maxAttempts: num(env.TESSERA_NOTIFY_MAX_ATTEMPTS, 12, 'TESSERA_NOTIFY_MAX_ATTEMPTS'),
    leaseMs: num(env.TESSERA_NOTIFY_LEASE_MS, 30_000, 'TESSERA_NOTIFY_LEASE_MS'),
    timeoutMs: num(env.TESSERA_NOTIFY_TIMEOUT_MS, 10_000, 'TESSERA_NOTIFY_TIMEOUT_MS'),
    retainHours: num(env.TESSERA_NOTIFY_RETAIN_HOURS, 168, 'TESSERA_NOTIFY_RETAIN_HOURS'),
    forwardSenderIds: onOff(env.TESSERA_NOTIFY_FORWARD_SENDER_IDS, 'TESSERA_NOTIFY_FORWARD_SENDER_IDS'),
  };
}

/** The delay before attempt `attempts + 1`: exponential, capped. */
export function retryDelay(settings: NotifySettings, attempts: number): number {
  return Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.max(0, attempts - 1));
}
