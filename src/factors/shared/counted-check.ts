import type { VerifyOutcome } from '../contract.ts';
import type { FailureLock, LockCheck } from './failure-lock.ts';

/**
 * The answer to a wrong code of a factor that checks codes itself (an authenticator app, a recovery
 * code): the attempt was already counted by `lock.beginAttempt`; say how many are left, or that the
 * method is now locked.
 */
export async function wrongAnswer(lock: FailureLock, userId: string, family: string, attempt: LockCheck): Promise<VerifyOutcome> {
  const left = attempt.locked ? 0 : attempt.attemptsLeft;
  if (left > 0) return { status: 'failed', reason: 'wrong_code', attemptsLeft: left };
  const check = await lock.check(userId, family);
  return { status: 'failed', reason: 'locked', retryAfterSeconds: check.locked ? check.retryAfterSeconds : 1 };
}
