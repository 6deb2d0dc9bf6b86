import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { scheduleDeletion } from '../../src/accounts/erase.ts';
import { Invitations } from '../../src/accounts/invitations.ts';
import { enqueueMail } from '../../src/delivery/dispatcher.ts';
import { FormBrowser, textOf } from '../support/browser.ts';
import { latestMail } from '../support/mail.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';

let nyckel: TestNyckel;
let invitations: Invitations;
const PASSWORD = 'my very own first passphrase';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  invitations = new Invitations(
    nyckel.db.prisma,
    nyckel.box,
    nyckel.audit,
    { enqueue: (tx, mail) => enqueueMail(tx, nyckel.box, mail), kick: () => nyckel.mail.dispatcher.kick() },
    { issuer: nyckel.settings.issuer, ttlSeconds: nyckel.settings.signIn.invitationTtl, defaultLocale: 'en' },
  );
});
afterAll(() => nyckel?.stop());

async function invite(username: string, email: string) {
  const user = await nyckel.accounts.create({ username, email, name: 'Adam Ny', locale: 'en' }, { actor: 'test' });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  await invitations.invite(user, { actor: 'test' });
  const link = /(https?:\/\/\S+\/invite\/\S+)/.exec((await latestMail(nyckel.db.prisma, email)).text)![1];
  return { user, link };
}

describe('invitations', () => {
  test('the link lets the person choose a password and signs them in to the account pages; it works once', async () => {
    const { user, link } = await invite('202100099001', 'invited@example.se');
    expect(link.startsWith(`${nyckel.settings.issuer}/invite/`)).toBe(true);
    const browser = new FormBrowser();
    const choose = await browser.go(link);
    expect(choose.status).toBe(200);
    expect(textOf(choose.html)).toContain('Hello Adam Ny. You sign in as 202100099001.');
    const weak = await browser.submit(choose, /\/invitation$/, { password: 'password123', confirm: 'password123' });
    expect(weak.status).toBe(400);
    const account = await browser.submit(weak, /\/invitation$/, { password: PASSWORD, confirm: PASSWORD });
    expect(new URL(account.url).pathname).toBe('/account');
    expect(textOf(account.html)).toContain('Welcome! Your password is set.');
    expect((await nyckel.accounts.verifyPassword('202100099001', PASSWORD))?.id).toBe(user.id);
    expect((await nyckel.db.prisma.userEmail.findFirstOrThrow({ where: { userId: user.id } })).verifiedAt).not.toBeNull();
    // Used: the link says so, in a fresh browser too.
    const again = await new FormBrowser().go(link);
    expect(again.status).toBe(410);
    expect(textOf(again.html)).toContain('The invitation has expired or was already used');
    const events = await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['user.created', 'user.invited', 'user.invitation_accepted', 'login.succeeded']));
    // The token is kept only as a keyed hash.
    const row = await nyckel.db.prisma.invitation.findUniqueOrThrow({ where: { userId: user.id } });
    expect(link).not.toContain(row.tokenHash);
  });

  test('inviting again replaces the earlier link; an expired link and garbage are refused with 410', async () => {
    const { user, link: first } = await invite('202100099002', 'reinvited@example.se');
    await invitations.invite(user, { actor: 'test' });
    const second = /(https?:\/\/\S+\/invite\/\S+)/.exec((await latestMail(nyckel.db.prisma, 'reinvited@example.se')).text)![1];
    expect(second).not.toBe(first);
    expect((await new FormBrowser().go(first)).status).toBe(410);
    await nyckel.db.prisma.invitation.update({ where: { userId: user.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect((await new FormBrowser().go(second)).status).toBe(410);
    expect((await new FormBrowser().go(`${nyckel.url}/invite/not-a-token`)).status).toBe(410);
  });

  test('parallel submits of the password: one sets it, the others find the invitation used', async () => {
    const { user, link } = await invite('202100099003', 'parallel.invite@example.se');
    const browser = new FormBrowser();
    const choose = await browser.go(link);
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) => browser.submit(choose, /\/invitation$/, { password: `${PASSWORD} ${i}`, confirm: `${PASSWORD} ${i}` })),
    );
    expect(results.filter((r) => new URL(r.url).pathname === '/account')).toHaveLength(1);
    expect(results.every((r) => r.status < 500)).toBe(true);
    const chosen = await Promise.all([0, 1, 2, 3].map((i) => nyckel.accounts.verifyPassword('202100099003', `${PASSWORD} ${i}`)));
    expect(chosen.filter((u) => u?.id === user.id)).toHaveLength(1);
  });

  test('a user who already holds a second factor is not invited (the mailbox alone would replace the password)', async () => {
    const user = await nyckel.accounts.create({ username: '202100099004', email: 'has.app@example.se' }, { actor: 'test' });
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true } });
    await expect(invitations.invite(user, { actor: 'test' })).rejects.toMatchObject({ code: 'conflict' });
    expect(await nyckel.db.prisma.invitation.count({ where: { userId: user.id } })).toBe(0);
  });

  test('an account closed after the link was opened (deletion asked for, grace period) gets no password and no sign-in', async () => {
    const { user, link } = await invite('202100099006', 'closing.invite@example.se');
    const browser = new FormBrowser();
    const choose = await browser.go(link);
    expect(choose.status).toBe(200);
    const deps = { prisma: nyckel.db.prisma, box: nyckel.box, audit: nyckel.audit, revokeElsewhere: nyckel.accounts.revokeElsewhere };
    await scheduleDeletion(deps, user.id, new Date(Date.now() + 14 * 86_400_000), { actor: 'user' });
    // The page: as for a used link.
    const spent = await browser.submit(choose, /\/invitation$/, { password: PASSWORD, confirm: PASSWORD });
    expect(spent.status).toBe(410);
    expect(textOf(spent.html)).toContain('The invitation has expired or was already used');
    expect((await new FormBrowser().go(link)).status).toBe(410);
    // The use itself, as when the account is closed between the page's check and the use.
    const token = link.split('/invite/')[1];
    expect(await invitations.accept(token, await nyckel.accounts.hashPassword(PASSWORD), {})).toBeUndefined();
    const after = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { id: user.id }, include: { invitation: true, emails: true } });
    expect(after).toMatchObject({ status: 'disabled', passwordHash: user.passwordHash, invitation: { usedAt: null }, emails: [{ verifiedAt: null }] });
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId: user.id, type: { in: ['user.invitation_accepted', 'login.succeeded'] } } })).toBe(0);
  });

  test('accepting ends the sessions and tokens the account had, as any new password does', async () => {
    const { user, link } = await invite('202100099005', 'revoked.invite@example.se');
    await nyckel.db.prisma.oidcModel.create({
      data: { type: 'Session', id: 'earlier-session', payload: { accountId: user.id }, uid: 'earlier-session-uid', expiresAt: new Date(Date.now() + 3600_000) },
    });
    const browser = new FormBrowser();
    const choose = await browser.go(link);
    await browser.submit(choose, /\/invitation$/, { password: PASSWORD, confirm: PASSWORD });
    expect(await nyckel.db.prisma.oidcModel.count({ where: { id: 'earlier-session' } })).toBe(0);
    const accepted = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.invitation_accepted' } });
    expect(accepted.data).toMatchObject({ sessionsEnded: 1 });
  });
});
