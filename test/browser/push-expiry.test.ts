import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { Chromium } from '../support/chromium.ts';
import { FakePushService } from '../support/fake-push-service.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { pushFlows } from '../push/helpers.ts';

const en = messages('en');
let nyckel: TestNyckel;
let push: FakePushService;
let chromium: Chromium;

beforeAll(async () => {
  push = await new FakePushService().start();
  [nyckel, chromium] = await Promise.all([startTestNyckel({ env: { NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS: 'true' } }), Chromium.launch()]);
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  await push?.stop();
});

const { userWithPhone } = pushFlows(() => ({ nyckel, push }));

describe('the push page in Chromium', () => {
  test('at the deadline the page itself says the request ended and makes "Send a new request" the primary button', async () => {
    const { email } = await userWithPhone();
    const page = await (await chromium.newContext({ locale: 'en-GB' })).newPage();
    // The page's own clock, moved on below: no waiting for 25 real seconds.
    await page.clock.install();
    const config = await relyingParty(nyckel.url, 'phone');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/phone-cb', scope: 'openid email', ui_locales: 'en' });
    await page.goto(start.url.toString());
    await page.getByLabel(en('login.name_label.username_or_email'), { exact: true }).fill(email);
    await page.getByLabel(en('login.password_label'), { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: en('login.submit'), exact: true }).click();
    // The push, the user's primary method, is sent at once after the password.
    await page.waitForURL(/\/mfa\/push\?send=1$/);
    await page.locator('#push-number').waitFor();
    const again = page.getByRole('link', { name: en('factors.push.retry'), exact: true });
    expect(await again.getAttribute('class')).toBeNull();
    const seconds = Number(await page.locator('#push').getAttribute('data-expires-in'));
    expect(seconds).toBeGreaterThan(0);
    await page.clock.runFor(seconds * 1000 + 1000);
    await page.getByText(en('factors.push.hints.expired')).waitFor();
    expect(await page.locator('#push-countdown').isHidden()).toBe(true);
    expect(await again.getAttribute('class')).toBe('button primary');
    expect(await again.evaluate((el) => el === document.activeElement)).toBe(true);
  });
});
