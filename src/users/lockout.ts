import type { SqlExecutor } from '../store/database.js';
import type { DirectoryUser } from './user-directory.js';

/** After `maxAttempts` failed sign-ins in a row, sign-in is refused for `lockMinutes` (even with the right password). */
export interface LockoutPolicy {
  maxAttempts: number;
  lockMinutes: number;
}

export const DEFAULT_LOCKOUT: LockoutPolicy = { maxAttempts: 5, lockMinutes: 15 };

export function isLocked(user: DirectoryUser, now = Date.now()): boolean {
  return user.lockedUntil !== null && user.lockedUntil > now;
}

/**
 * Counts a failure in one statement (two concurrent failures both count). The failure that reaches the
 * limit locks the account and starts the count again. Returns whether the account is now locked.
 */
export async function recordFailure(db: SqlExecutor, userId: string, policy: LockoutPolicy, now = Date.now()): Promise<boolean> {
  await db.run(
    `UPDATE app_user SET
       locked_until = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE locked_until END,
       failed_attempts = CASE WHEN failed_attempts + 1 >= ? THEN 0 ELSE failed_attempts + 1 END
     WHERE id = ?`,
    [policy.maxAttempts, now + policy.lockMinutes * 60_000, policy.maxAttempts, userId],
  );
  const rows = await db.query<{ locked_until: number | string | null }>('SELECT locked_until FROM app_user WHERE id = ?', [userId]);
  return rows[0]?.locked_until != null && Number(rows[0].locked_until) > now;
}

export async function recordSuccess(db: SqlExecutor, userId: string, totpStep?: number): Promise<void> {
  if (totpStep !== undefined) {
    await db.run('UPDATE app_user SET failed_attempts = 0, locked_until = NULL, totp_last_step = ? WHERE id = ?', [totpStep, userId]);
  } else {
    await db.run('UPDATE app_user SET failed_attempts = 0, locked_until = NULL WHERE id = ?', [userId]);
  }
}
