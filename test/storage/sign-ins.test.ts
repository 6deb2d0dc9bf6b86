import { beforeAll, describe, expect, test } from '@jest/globals';
import crypto from 'node:crypto';
import { passwordFactor, SignIns, type SignInSnapshot, type VerifiedFactor } from '../../src/factors/sign-ins.ts';
import { driverOf } from '../../src/storage/sql.ts';
import { suiteDatabase } from '../support/suite-database.ts';

// The one way a sign-in ends (SignIns.complete), on both databases: once, for its user only, and on
// exactly the factors it judged.
const db = suiteDatabase();
let signIns: SignIns;

beforeAll(() => {
  signIns = new SignIns(db.prisma);
});

async function newUser() {
  return db.prisma.user.create({ data: { email: `${crypto.randomUUID()}@example.se`, passwordHash: 'x' } });
}

const code = (userId: string): VerifiedFactor => ({ factor: 'totp', channel: 'app', amr: ['otp'], at: new Date().toISOString(), userId, multiFactor: true });
const inAnHour = () => new Date(Date.now() + 3_600_000);
const twoFactors = (verified: VerifiedFactor[]) => verified.length >= 2;

async function begun(userId: string) {
  const uid = crypto.randomUUID();
  await signIns.begin(uid, 'app', inAnHour(), passwordFactor(userId));
  return uid;
}

describe('SignIns.complete', () => {
  test('ends a satisfied sign-in once, also when ten requests finish it at once', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    await signIns.record(uid, code(user.id));
    const results = await Promise.all(Array.from({ length: 10 }, () => signIns.complete(uid, user.id, twoFactors)));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect((await signIns.load(uid))?.completedAt).toBeInstanceOf(Date);
  });

  test('an unsatisfied sign-in, another user, or a disabled user does not end it', async () => {
    const [user, other] = [await newUser(), await newUser()];
    const uid = await begun(user.id);
    expect(await signIns.complete(uid, user.id, twoFactors)).toBeUndefined();
    await signIns.record(uid, code(user.id));
    expect(await signIns.complete(uid, other.id, () => true)).toBeUndefined();
    await db.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } });
    expect(await signIns.complete(uid, user.id, twoFactors)).toBeUndefined();
    expect((await signIns.load(uid))?.completedAt).toBeNull();
  });

  /** SignIns whose next conditional UPDATE runs only after `meanwhile` (another request's change between read and write). */
  function signInsWith(meanwhile: () => Promise<unknown>) {
    let pending: (() => Promise<unknown>) | undefined = meanwhile;
    const driver = driverOf(db.prisma);
    return new SignIns(db.prisma, {
      ...driver,
      changed: async (strings, ...values) => {
        const first = pending;
        pending = undefined;
        await first?.();
        return driver.changed(strings, ...values);
      },
    });
  }

  test('a factor added while the sign-in is judged is judged too: what ends is what was judged', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    const judged: number[] = [];
    const done = await signInsWith(() => signIns.record(uid, code(user.id))).complete(uid, user.id, (verified) => {
      judged.push(verified.length);
      return true;
    });
    // The first judgement (password only) is stale by the UPDATE: it ends on the second, of both factors.
    expect(judged).toEqual([1, 2]);
    expect(done?.verified.map((v) => v.factor)).toEqual(['password', 'totp']);
  });

  test('a user disabled while the sign-in is judged: it does not end', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    const disable = () => db.prisma.user.update({ where: { id: user.id }, data: { status: 'disabled' } });
    expect(await signInsWith(disable).complete(uid, user.id, () => true)).toBeUndefined();
    expect((await signIns.load(uid))?.completedAt).toBeNull();
  });

  test('the record as this request wrote it is judged without reading it again', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    const driver = driverOf(db.prisma);
    const reads: string[] = [];
    const counted = new SignIns(db.prisma, {
      ...driver,
      query: (text, values) => {
        if (/^\s*SELECT/i.test(text)) reads.push(text);
        return driver.query(text, values);
      },
    });
    const recorded = await counted.record(uid, code(user.id));
    expect(recorded.verified.map((v) => v.factor)).toEqual(['password', 'totp']);
    const done = await counted.complete(uid, user.id, twoFactors, recorded.snapshot);
    expect(done?.verified.map((v) => v.factor)).toEqual(['password', 'totp']);
    expect(reads).toEqual([]);
  });

  test("the record as the first step wrote it (new, kept, or another user's replaced) is judged without reading it again", async () => {
    const [anna, bo] = [await newUser(), await newUser()];
    const reads: string[] = [];
    const driver = driverOf(db.prisma);
    const counted = new SignIns(db.prisma, {
      ...driver,
      query: (text, values) => {
        if (/^\s*SELECT/i.test(text)) reads.push(text);
        return driver.query(text, values);
      },
    });
    const uid = crypto.randomUUID();
    const fresh = await counted.begin(uid, 'app', inAnHour(), passwordFactor(anna.id));
    expect(fresh).toMatchObject({ uid, userId: anna.id, completedAt: null, pendingPasswordHash: null, userActive: true });
    const kept = await counted.begin(uid, 'app', inAnHour(), code(anna.id));
    const replaced = await counted.begin(uid, 'app', inAnHour(), passwordFactor(bo.id));
    expect(reads).toEqual([]);
    const factors = (snapshot: SignInSnapshot) =>
      (typeof snapshot.verified === 'string' ? JSON.parse(snapshot.verified) : snapshot.verified) as VerifiedFactor[];
    expect([fresh, kept].map((snapshot) => factors(snapshot).map((v) => v.factor))).toEqual([['password'], ['password', 'totp']]);
    expect(replaced).toMatchObject({ uid, userId: bo.id });
    const done = await counted.complete(uid, bo.id, (verified) => verified.length === 1, replaced);
    expect(done?.verified.map((v) => [v.factor, v.userId])).toEqual([['password', bo.id]]);
    expect(reads).toEqual([]);
    // Judged on the stale snapshot of anna's record, the UPDATE does not match bo's: nothing ends twice.
    expect(await counted.complete(uid, anna.id, () => true, kept)).toBeUndefined();
  });

  test('a record that changed after this request wrote it is read and judged again', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    const { snapshot } = await signIns.record(uid, code(user.id));
    await signIns.setPendingPassword(uid, user.id, 'new-hash');
    const pending: boolean[] = [];
    const done = await signIns.complete(
      uid,
      user.id,
      (_verified, pendingPassword) => {
        pending.push(pendingPassword);
        return !pendingPassword;
      },
      snapshot,
    );
    expect(pending).toEqual([false, true]);
    expect(done).toBeUndefined();
    const disabled = await newUser();
    const other = await begun(disabled.id);
    const written = await signIns.record(other, code(disabled.id));
    await db.prisma.user.update({ where: { id: disabled.id }, data: { status: 'disabled' } });
    expect(await signIns.complete(other, disabled.id, () => true, written.snapshot)).toBeUndefined();
    expect((await signIns.load(other))?.completedAt).toBeNull();
  });

  test('a reset password chosen while the sign-in is judged: it does not end on the old judgement', async () => {
    const user = await newUser();
    const uid = await begun(user.id);
    const pending: boolean[] = [];
    const done = await signInsWith(() => signIns.setPendingPassword(uid, user.id, 'new-hash')).complete(uid, user.id, (_verified, pendingPassword) => {
      pending.push(pendingPassword);
      return !pendingPassword;
    });
    expect(pending).toEqual([false, true]);
    expect(done).toBeUndefined();
  });
});
