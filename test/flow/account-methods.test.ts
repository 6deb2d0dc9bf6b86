// The account pages: the order of methods, their removal, other sessions and remembered browsers.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { textOf } from '../support/browser.ts';
import { smsTo } from '../support/mail.ts';
import { accountPages } from '../support/account-pages.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';

let nyckel: TestNyckel;
const { newUser, url, signInWithPassword, addApp } = accountPages(() => nyckel, 'acctm');

beforeAll(async () => {
  // A number proven here is signed in with at once: no send cooldown between the two (test/flow/send-limits.test.ts has it).
  nyckel = await startTestNyckel({ env: { NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES: '10', NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

describe('order and removal of methods', () => {
  test('move to the top makes a method primary for sign-in; the last method cannot be removed where one is required', async () => {
    const { email, user } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    const app = await addApp(browser, page, 'Phone', -1);
    let overview = await browser.go(url('/account'));
    // Add a verified number too: now two methods, the app first (it was added first, then SMS).
    const proof = await browser.submit(overview, '/account/phones', { value: '+46 70 999 00 11' });
    const [sms] = await smsTo(nyckel.db.prisma, '+46709990011');
    overview = await browser.submit(proof, '/verify', { code: /#(\d{6})$/.exec(sms.text)![1] });
    const order = () => [...overview.html.matchAll(/data-method="([a-z-]+)"/g)].map((m) => m[1]);
    expect(order()).toEqual(['sms', 'totp']);
    overview = await browser.submit(overview, /\/account\/methods\/totp\/move$/, { direction: 'top' });
    expect(order()).toEqual(['totp', 'sms']);
    expect(textOf(overview.html)).toContain('The order of your sign-in methods is saved');

    // The care portal (sms, email-code) and a client offering both see the user's order.
    const fresh = await nyckel.accounts.findById(user.id);
    const methods = await (nyckel as unknown as { engine?: unknown }).engine;
    expect(methods).toBeUndefined();
    expect(fresh!.methodOrder).toEqual(['totp', 'sms']);

    // Remove the app, then the number would be the last method: refused with a reason, nothing removed.
    const appRow = await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId: user.id, type: 'totp' } });
    overview = await browser.submit(overview, `/account/enrolments/${appRow!.id}/remove`, {});
    expect(textOf(overview.html)).toContain('The sign-in method was removed');
    const phone = await nyckel.db.prisma.userPhone.findFirst({ where: { userId: user.id } });
    const refused = await browser.submit(overview, `/account/phones/${phone!.id}/remove`, {});
    expect(refused.status).toBe(409);
    expect(textOf(refused.html)).toContain('This is your last sign-in method');
    expect(await nyckel.db.prisma.userPhone.count({ where: { userId: user.id } })).toBe(1);
    expect(app.secret).toMatch(/^[A-Z2-7]+$/);
  });
});

describe('sessions, remembered browsers and the order as a whole', () => {
  test('another session is listed and signed out on its own; a remembered browser is forgotten on its own', async () => {
    const { email, user } = await newUser();
    const other = await signInWithPassword(email);
    const { browser } = await signInWithPassword(email);
    await nyckel.db.prisma.rememberedBrowser.createMany({
      data: [
        {
          userId: user.id,
          tokenHash: `hash-a-${user.id}`,
          factor: 'totp',
          userAgent: 'Mozilla/5.0 (Windows NT 10.0) Gecko/20100101 Firefox/128.0',
          expiresAt: new Date(Date.now() + 86_400_000),
        },
        {
          userId: user.id,
          tokenHash: `hash-b-${user.id}`,
          factor: 'totp',
          userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1',
          expiresAt: new Date(Date.now() + 86_400_000),
        },
      ],
    });
    let page = await browser.go(url('/account'));
    expect(textOf(page.html)).toContain('Firefox · Windows');
    expect(textOf(page.html)).toContain('Safari · iOS');
    const endForms = [...page.html.matchAll(/action="(\/account\/sessions\/[A-Za-z0-9_-]+\/end)"/g)].map((m) => m[1]);
    // Two sessions: this one (no button) and the other browser's.
    expect(endForms).toHaveLength(1);
    page = await browser.submit(page, endForms[0], {});
    expect(textOf(page.html)).toContain('You are signed out everywhere else');
    expect((await other.browser.request(url('/account'))).status).toBe(303);
    expect((await browser.request(url('/account'))).status).toBe(200);

    const firefox = await nyckel.db.prisma.rememberedBrowser.findFirst({ where: { userId: user.id, userAgent: { contains: 'Firefox' } } });
    page = await browser.submit(page, `/account/browsers/${firefox!.id}/forget`, {});
    expect(textOf(page.html)).not.toContain('Firefox · Windows');
    expect(textOf(page.html)).toContain('Safari · iOS');
    expect((await nyckel.db.prisma.rememberedBrowser.findUnique({ where: { id: firefox!.id } }))!.revokedAt).not.toBeNull();
    const notMine = await browser.request(url('/account/browsers/00000000-0000-0000-0000-000000000000/forget'), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(/name="_csrf" value="([^"]+)"/.exec(page.html)![1])}`,
    });
    expect(notMine.status).toBe(404);
  });

  test('a whole new order (as dragging posts it) is saved; one that is not the same methods is refused', async () => {
    const { email, user } = await newUser();
    const { browser, page } = await signInWithPassword(email);
    await addApp(browser, page, 'Phone', -1);
    await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46705550101', verifiedAt: new Date() } });
    let overview = await browser.go(url('/account'));
    const csrf = /name="_csrf" value="([^"]+)"/.exec(overview.html)![1];
    const post = (order: string) =>
      browser.go(url('/account/methods/order'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrf, order }).toString(),
      });
    overview = await post('sms,totp');
    expect([...overview.html.matchAll(/data-method="([a-z-]+)"/g)].map((m) => m[1])).toEqual(['sms', 'totp']);
    const refused = await post('sms,bankid');
    expect(refused.status).toBe(400);
    expect(textOf(refused.html)).toContain('The list of methods has changed meanwhile');
    expect((await nyckel.accounts.findById(user.id))!.methodOrder).toEqual(['sms', 'totp']);
  });
});
