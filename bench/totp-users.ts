import crypto from 'node:crypto';
import { Accounts } from '../src/accounts/accounts.ts';
import { AuditLog } from '../src/accounts/audit.ts';
import { withDatabase } from '../src/cli/common.ts';
import type { Settings } from '../src/config/settings.ts';
import { TOTP_SECRET_PURPOSE } from '../src/factors/totp/index.ts';
import { newTotpSecret, TOTP_OPTIONS, totpCode } from '../src/factors/totp/otp.ts';
import { resolveMasterKey, SecretBox } from '../src/security/crypto.ts';
import type { LoginUser } from './http.ts';

export interface TotpUser {
  email: string;
  password: string;
  /** The authenticator app's secret (base32), as the QR code would have carried it. */
  secret: string;
}

const BATCH = 500;

/**
 * Migrates the database named by `settings` and adds `count` users, each with a verified address and
 * one confirmed authenticator app, as a sign-in enrolment leaves them. The password is hashed once,
 * by Accounts at the argon2 parameters of `settings` (each sign-in verifies at those), and shared: a
 * hash per user would make the set-up take longer than the measurement. The app secrets are sealed
 * with the master key of `settings`, which the nodes must share.
 */
export async function seedTotpUsers(settings: Settings, count: number, password: string): Promise<TotpUser[]> {
  const users = await seedUsers(settings, count, password, true);
  return users.map((user) => ({ email: user.email, password, secret: user.secret! }));
}

/**
 * The same users without a second factor, for password sign-ins: one account each per sign-in in
 * flight, as real traffic comes, rather than one account signing in many times at once (which the
 * per-account login throttle rightly counts as guessing).
 */
export async function seedPasswordUsers(settings: Settings, count: number, password: string): Promise<LoginUser[]> {
  const users = await seedUsers(settings, count, password, false);
  return users.map(({ email }) => ({ email, password }));
}

async function seedUsers(settings: Settings, count: number, password: string, withApp: boolean): Promise<Array<{ email: string; secret?: string }>> {
  const box = new SecretBox(resolveMasterKey(settings));
  const run = crypto.randomBytes(3).toString('hex');
  return withDatabase(settings, async ({ prisma }) => {
    const passwordHash = await new Accounts(prisma, new AuditLog(prisma), settings.argon2).hashPassword(password);
    const users: Array<{ email: string; secret?: string }> = [];
    for (let from = 0; from < count; from += BATCH) {
      const batch = Array.from({ length: Math.min(BATCH, count - from) }, (_, i) => ({
        userId: crypto.randomUUID(),
        enrolmentId: crypto.randomUUID(),
        email: `bench-${run}-${from + i}@nyckel.example`,
        secret: newTotpSecret(),
      }));
      const verifiedAt = new Date();
      const apps = (withApp ? batch : []).map((u) => ({
        id: u.enrolmentId,
        userId: u.userId,
        type: 'totp',
        label: 'Bench phone',
        secret: box.seal(TOTP_SECRET_PURPOSE, u.secret, u.enrolmentId),
        confirmed: true,
      }));
      await prisma.$transaction([
        prisma.user.createMany({ data: batch.map((u) => ({ id: u.userId, email: u.email, name: 'Bench User', passwordHash })) }),
        prisma.userEmail.createMany({ data: batch.map((u) => ({ userId: u.userId, address: u.email, verifiedAt })) }),
        prisma.factorEnrolment.createMany({ data: apps }),
      ]);
      users.push(...batch.map((u) => ({ email: u.email, ...(withApp ? { secret: u.secret } : {}) })));
    }
    return users;
  });
}

const stepNow = () => Math.floor(Date.now() / 1000 / TOTP_OPTIONS.period);

/**
 * The users of a sign-in load, each at most once per 30-second TOTP step: a code works once, and no
 * code of a step the app has already used works again. Users are taken in turn, skipping any that
 * has signed in (or is signing in) during the current step; when every one has, the pool is too
 * small for the rate and the sign-in fails with that reason rather than waiting.
 */
export class TotpUserPool {
  /** Per user: the latest step it was taken in or typed a code of. */
  private readonly lastStep: number[];
  private next = 0;

  constructor(private readonly users: TotpUser[]) {
    this.lastStep = users.map(() => -1);
  }

  get size(): number {
    return this.users.length;
  }

  /** The user of the next sign-in, with `otp` giving the app's code at the moment it is typed. */
  take = (): LoginUser => {
    const step = stepNow();
    for (let tried = 0; tried < this.users.length; tried++) {
      const index = this.next++ % this.users.length;
      if (this.lastStep[index] >= step) continue;
      this.lastStep[index] = step;
      const user = this.users[index];
      return {
        email: user.email,
        password: user.password,
        otp: () => {
          // Later than the step the user was taken in, if the sign-in crossed into the next one.
          const epochSeconds = Math.floor(Date.now() / 1000);
          this.lastStep[index] = Math.max(this.lastStep[index], Math.floor(epochSeconds / TOTP_OPTIONS.period));
          return totpCode(user.secret, epochSeconds);
        },
      };
    }
    throw new Error(`all ${this.users.length} users have signed in during this 30-s TOTP step; seed more (--users)`);
  };
}
