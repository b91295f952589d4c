import type { SqlExecutor } from '../store/database.js';
import { isLocked, recordFailure, recordSuccess, type LockoutPolicy } from './lockout.js';
import { verifyPassword } from './passwords.js';
import { verifyTotp } from './totp.js';
import { findUserByEmail, type DirectoryUser } from './user-directory.js';

/**
 * The outcome of a sign-in attempt, worth an audit record. It names the user by directory id only (no
 * email, name or password: nothing a log must not hold). The sign-in page shows the same message for
 * every failure, so that it does not tell which accounts exist.
 */
export type SignInOutcome =
  | { ok: true; user: DirectoryUser; event: 'sign-in' }
  | { ok: false; event: 'sign-in-refused'; reason: 'unknown-user' | 'bad-password' | 'bad-totp' | 'totp-required' | 'locked' | 'disabled'; userId?: string; nowLocked?: boolean };

export async function signInWithPassword(db: SqlExecutor, form: { email: string; password: string; totp?: string }, policy: LockoutPolicy): Promise<SignInOutcome> {
  const user = await findUserByEmail(db, form.email);
  const passwordOk = await verifyPassword(form.password, user?.passwordHash ?? null);
  if (!user) {
    return { ok: false, event: 'sign-in-refused', reason: 'unknown-user' };
  }
  if (user.disabled) {
    return { ok: false, event: 'sign-in-refused', reason: 'disabled', userId: user.id };
  }
  if (isLocked(user)) {
    return { ok: false, event: 'sign-in-refused', reason: 'locked', userId: user.id };
  }
  const failed = async (reason: 'bad-password' | 'bad-totp' | 'totp-required'): Promise<SignInOutcome> => ({
    ok: false,
    event: 'sign-in-refused',
    reason,
    userId: user.id,
    nowLocked: await recordFailure(db, user.id, policy),
  });
  if (!passwordOk) {
    return failed('bad-password');
  }
  let totpStep: number | undefined;
  if (user.totpSecret) {
    if (!form.totp) {
      return failed('totp-required');
    }
    totpStep = verifyTotp(user.totpSecret, form.totp.trim(), user.totpLastStep);
    if (totpStep === undefined) {
      return failed('bad-totp');
    }
  }
  await recordSuccess(db, user.id, totpStep);
  return { ok: true, user, event: 'sign-in' };
}
