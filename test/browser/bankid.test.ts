// BankID in a real Chromium, as Aiai's users (Swedish) know it: after the password choose BankID,
// then which BankID ("BankID på annan enhet"), scan the animated QR code, which changes every second,
// follow BankID's messages, and come back signed in. BankID's RP API is a fake on loopback over
// mutual TLS; openid-client is the relying party.
import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as oidc from 'openid-client';
import type { Page } from 'playwright-core';
import { bindPersonalNumber } from '../../src/factors/bankid/binding.ts';
import { makeBankIdCertificates, personalNumberFor, startFakeBankId, type FakeBankId } from '../support/bankid-fake.ts';
import { Chromium, interceptRelyingParty, seriousAxeViolations } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { messages } from '../support/messages.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

const msg = messages('sv');

// Each order is collected every two seconds, as BankID asks: the flows take seconds, more on a busy machine.
jest.setTimeout(120_000);

let nyckel: TestNyckel;
let fake: FakeBankId;
let chromium: Chromium;
let rpConfig: oidc.Configuration;
let counter = 0;

beforeAll(async () => {
  fake = await startFakeBankId(makeBankIdCertificates());
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: fake.env() }), Chromium.launch()]);
  rpConfig = await relyingParty(nyckel.url, 'eid');
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  await fake?.close();
});

/** A user with a bound BankID and a phone, signed in with the password, at the list of methods (as in Aiai). */
async function toMethodList(page: Page) {
  const personalNumber = personalNumberFor('19750505', 100 + ++counter);
  const email = `bankid-browser${counter}@kura.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'sv' });
  await bindPersonalNumber(nyckel.db.prisma, nyckel.box, user.id, personalNumber);
  await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: `+4670123${String(4500 + counter)}`, verifiedAt: new Date() } });
  const start = await startAuthorization(rpConfig, { redirect_uri: 'http://localhost:4000/eid-cb', scope: 'openid', ui_locales: 'sv' });
  await page.goto(start.url.toString());
  await page.getByLabel(msg('login.name_label.username_or_email'), { exact: true }).fill(email);
  await page.getByLabel(msg('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: msg('login.submit'), exact: true }).click();
  // The primary method (BankID, the client's first) starts at once; the list is one click away.
  await page.getByRole('heading', { level: 1, name: msg('factors.bankid.title'), exact: true }).waitFor();
  await page.getByRole('link', { name: msg('mfa.other_method'), exact: true }).click();
  await page.getByRole('heading', { level: 1, name: msg('mfa.choose_title'), exact: true }).waitFor();
  return { user, start, personalNumber };
}

describe('BankID in Chromium', () => {
  test('Aiai (sv): choose BankID, then "BankID på annan enhet": the QR code changes every second, the messages follow, signed in', async () => {
    const context = await chromium.newContext();
    const page = await context.newPage();
    const rp = await interceptRelyingParty(page);
    const { user, start, personalNumber } = await toMethodList(page);
    fake.state.nextScript = {
      hints: ['outstandingTransaction', 'outstandingTransaction', 'outstandingTransaction', 'outstandingTransaction', 'userSign', 'userSign'],
      end: { complete: personalNumber },
    };

    await page
      .getByRole('link', { name: new RegExp(msg('factors.bankid.name')) })
      .first()
      .click();
    await page.getByRole('heading', { level: 1, name: msg('factors.bankid.title'), exact: true }).waitFor();
    await page.getByText(msg('factors.bankid.choose'), { exact: true }).waitFor();
    // "BankID på den här enheten" opens the app by its autostart link (on a computer the bankid:/// scheme).
    const same = page.getByRole('link', { name: msg('factors.bankid.this_device'), exact: true });
    expect(await same.getAttribute('href')).toMatch(/^bankid:\/\/\/\?autostarttoken=[0-9a-f-]{36}&redirect=null$/);
    // On a computer the QR code is shown at once, but no status before the person has chosen.
    const qr = page.locator('#bankid-qr');
    await qr.waitFor({ state: 'visible' });
    await page.waitForTimeout(2500);
    expect(await page.locator('#bankid-message').textContent()).toBe('');
    // No mark unless the installation supplies it (NYCKEL_BANKID_LOGO_FILE): the heading names BankID in words.
    expect(await page.locator('#bankid-logo').count()).toBe(0);
    expect(await seriousAxeViolations(page)).toEqual([]);

    await page.getByRole('button', { name: msg('factors.bankid.other_device'), exact: true }).click();
    await page.getByText(msg('factors.bankid.hints.outstandingTransaction_qr'), { exact: true }).waitFor();
    // The animated QR code: a new image every second.
    const sources = new Set<string>();
    for (let i = 0; i < 8 && sources.size < 3; i++) {
      sources.add((await qr.getAttribute('src'))!);
      await page.waitForTimeout(600);
    }
    expect(sources.size).toBeGreaterThanOrEqual(3);
    for (const src of sources) expect(src).toMatch(/^data:image\/svg\+xml;base64,/);
    expect(await seriousAxeViolations(page)).toEqual([]);

    await page.getByText(msg('factors.bankid.hints.userSign'), { exact: true }).waitFor({ timeout: 15_000 });
    const tokens = await oidc.authorizationCodeGrant(rpConfig, await rp.arrival(), {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'user', 'mfa'] });
    // Finished by the page, not given up: the order was not cancelled on the way out.
    expect(fake.last()!.cancelled).toBe(false);
  });

  test('"Välj ett annat sätt" on the BankID page cancels the order at BankID (sendBeacon on pagehide)', async () => {
    const context = await chromium.newContext();
    const page = await context.newPage();
    await toMethodList(page);
    fake.state.nextScript = { hints: Array(60).fill('outstandingTransaction'), end: { failed: 'expiredTransaction' } };
    await page
      .getByRole('link', { name: new RegExp(msg('factors.bankid.name')) })
      .first()
      .click();
    await page.getByRole('heading', { level: 1, name: msg('factors.bankid.title'), exact: true }).waitFor();
    const order = fake.last()!;
    expect(order.cancelled).toBe(false);
    await page.getByRole('link', { name: msg('mfa.other_method'), exact: true }).click();
    await page.getByRole('heading', { level: 1, name: msg('mfa.choose_title'), exact: true }).waitFor();
    for (let i = 0; i < 50 && !order.cancelled; i++) await page.waitForTimeout(100);
    expect(order.cancelled).toBe(true);
  });

  test('a failed order shows BankID\'s message and "Försök igen", which makes a new order', async () => {
    const context = await chromium.newContext();
    const page = await context.newPage();
    await toMethodList(page);
    fake.state.nextScript = { hints: [], end: { failed: 'userCancel' } };
    await page
      .getByRole('link', { name: new RegExp(msg('factors.bankid.name')) })
      .first()
      .click();
    await page.getByText(msg('factors.bankid.hints.userCancel'), { exact: true }).waitFor({ timeout: 10_000 });
    const first = fake.last()!;
    await page.getByRole('link', { name: msg('factors.bankid.try_again'), exact: true }).click();
    await page.getByText(msg('factors.bankid.choose'), { exact: true }).waitFor();
    expect(fake.last()!.orderRef).not.toBe(first.orderRef);
  });
});
