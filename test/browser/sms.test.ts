// An SMS code in a real Chromium, as the care portal's users (Swedish) know it from Aiai: after the
// password, choose "Kod via SMS", see the masked number (xxxx-xxxx72) and the 5-minute validity, type
// the code. The text goes to the dev outbox; openid-client is the relying party and redeems the code.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { messages } from '../support/messages.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { smsTo } from '../support/mail.ts';

const msg = messages('sv');

let nyckel: TestNyckel;
let chromium: Chromium;
let rpConfig: oidc.Configuration;

beforeAll(async () => {
  [nyckel, chromium] = await Promise.all([startTestNyckel(), Chromium.launch()]);
  rpConfig = await relyingParty(nyckel.url, 'care');
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
});

const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name, exact: true });

describe('SMS code in Chromium', () => {
  test('Aiai (sv): the SMS goes to the one number at once, the masked number and validity shown, the code from the text signs in', async () => {
    const email = 'vardare@kura.example';
    const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
    await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46701234572', verifiedAt: new Date() } });

    const context = await chromium.newContext();
    const page = await context.newPage();
    const rp = await interceptRelyingParty(page);
    const start = await startAuthorization(rpConfig, { redirect_uri: 'http://localhost:4000/care-cb', scope: 'openid', ui_locales: 'sv' });
    await page.goto(start.url.toString());
    await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
    await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();

    // SMS, the client's first method, starts at once: the text goes to the one number (Aiai).
    const sent = page.getByText(msg('factors.sms.code_sent', { target: 'xxxx-xxxx72', minutes: 5 }));
    await sent.waitFor();
    expect(await page.content()).not.toContain('+46701234572');
    const code = page.getByLabel(msg('mfa.code_label'), { exact: true });
    expect(await code.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await code.getAttribute('autocomplete')).toBe('one-time-code');
    expect(await seriousAxeViolations(page)).toEqual([]);

    // "Use another method" lists both; SMS again is the code already sent, not a second text.
    await page.getByRole('link', { name: msg('mfa.other_method'), exact: true }).click();
    await heading(page, msg('mfa.choose_title')).waitFor();
    expect(await seriousAxeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: new RegExp(msg('factors.email-code.name')) }).waitFor();
    await page.getByRole('link', { name: new RegExp(msg('factors.sms.name')) }).click();
    await sent.waitFor();
    expect(await smsTo(nyckel.db.prisma, '+46701234572')).toHaveLength(1);

    const text = (await smsTo(nyckel.db.prisma, '+46701234572'))[0].text;
    // Short, localised, and with the WebOTP / iOS one-time-code line.
    const [, received] = /@localhost #(\d{6})$/.exec(text)!;
    expect(text).toContain(`Din kod till Care portal är ${received}`);
    await page.getByLabel(msg('mfa.code_label'), { exact: true }).fill(received);
    await page.keyboard.press('Enter');

    const tokens = await oidc.authorizationCodeGrant(rpConfig, await rp.arrival(), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'sms', 'mfa'] });
  });
});
