import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { decodeEntities, textOf, type Page } from '../support/browser.ts';
import { FakePushService } from '../support/fake-push-service.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { PIN, pushFlows } from './helpers.ts';

let nyckel: TestNyckel;
let push: FakePushService;
const MAX_FAILURES = 3;

beforeAll(async () => {
  push = await new FakePushService().start();
  nyckel = await startTestNyckel({ env: { NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS: 'true', NYCKEL_FACTOR_MAX_FAILURES: String(MAX_FAILURES) } });
});
afterAll(async () => {
  await nyckel?.stop();
  await push?.stop();
});

const flows = pushFlows(() => ({ nyckel, push }));
const { url, userWithPhone, passwordStep, tokensFrom } = flows;

/** Password, then "Nyckel Authenticator (QR code)": the code page with the QR code and its text. */
async function qrPage(email: string) {
  const flow = await passwordStep(email);
  const page = await flow.browser.go(url(`/interaction/${flow.uid}/mfa/app-qr`));
  expect(page.status).toBe(200);
  const text = decodeEntities(/<code id="app-qr-text">([^<]+)<\/code>/.exec(page.html)![1]);
  return { ...flow, page, text };
}

const submitCode = (flow: Awaited<ReturnType<typeof qrPage>>, page: Page, code: string) => flow.browser.submit(page, '/verify', { code });

describe('Nyckel Authenticator with a QR code (offline)', () => {
  test('the page shows a QR code of a fresh challenge; the phone computes the code without network; acr mfa, amr pwd+otp+swk', async () => {
    // A phone without any push subscription: nothing reaches it, it only scans.
    const { user, device } = await userWithPhone({ push: false });
    const flow = await qrPage(user.email!);
    expect(flow.page.html).toMatch(
      /<img id="app-qr" src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+" width="240" height="240" alt="QR code to scan with Nyckel Authenticator">/,
    );
    expect(textOf(flow.page.html)).toContain('Type the 8-digit code the app shows');
    expect(flow.text).toMatch(/^nyckel-qr-v2:[A-Za-z0-9_-]{22}:Phone portal$/);
    const code = await device.qrCode(flow.text, PIN);
    expect(code).toMatch(/^\d{8}$/);
    const done = await submitCode(flow, flow.page, code);
    const tokens = await tokensFrom(flow.config, flow.start, done);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'swk', 'mfa'] });
    const row = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { id: device.deviceId } });
    expect(row.lastUsedAt).not.toBeNull();
  });

  test('a code works once: replayed on a new challenge it is wrong; the same right code in parallel: one sign-in', async () => {
    const { user, device } = await userWithPhone({ push: false });
    const first = await qrPage(user.email!);
    const oldCode = await device.qrCode(first.text, PIN);
    expect((await submitCode(first, first.page, oldCode)).url).toContain('code=');

    const second = await qrPage(user.email!);
    expect(second.text).not.toBe(first.text);
    const replay = await submitCode(second, second.page, oldCode);
    expect(replay.status).toBe(401);
    expect(textOf(replay.html)).toContain('That code is not right');

    const code = await device.qrCode(second.text, PIN);
    const results = await Promise.all([submitCode(second, second.page, code), submitCode(second, second.page, code)]);
    expect(results.filter((p) => p.url.includes('code=')).length).toBe(1);
  });

  test('the PIN is part of the code: with a wrong PIN the phone shows a wrong code, which counts like any wrong code', async () => {
    const { user, device } = await userWithPhone({ push: false });
    const flow = await qrPage(user.email!);
    const withWrongPin = await device.qrCode(flow.text, '1397');
    const right = await device.qrCode(flow.text, PIN);
    expect(withWrongPin).toMatch(/^\d{8}$/);
    expect(withWrongPin).not.toBe(right);
    const refused = await submitCode(flow, flow.page, withWrongPin);
    expect(refused.status).toBe(401);
    expect(textOf(refused.html)).toContain('That code is not right');
    const row = await nyckel.db.prisma.factorChallenge.findFirstOrThrow({ where: { userId: user.id, factor: 'app-qr' }, orderBy: { createdAt: 'desc' } });
    expect(row.attempts).toBe(1);
    expect((await submitCode(flow, flow.page, right)).url).toContain('code=');
  });

  test('wrong codes are counted against the failure lock', async () => {
    const { user, device } = await userWithPhone({ push: false });
    const flow = await qrPage(user.email!);
    const right = await device.qrCode(flow.text, PIN);
    const wrong = right === '12345678' ? '87654321' : '12345678';
    for (let i = 1; i < MAX_FAILURES; i++) expect((await submitCode(flow, flow.page, wrong)).status).toBe(401);
    const locked = await submitCode(flow, flow.page, wrong);
    expect(locked.status).toBe(429);
    expect((await submitCode(flow, flow.page, right)).status).toBe(429);
  });
});
