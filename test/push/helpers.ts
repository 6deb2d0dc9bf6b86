import { expect } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, decodeEntities, textOf, type Page } from '../support/browser.ts';
import { DeviceSimulator } from '../support/device-simulator.ts';
import type { FakePushService } from '../support/fake-push-service.ts';
import { TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

export const PIN = '2580';
export const CLIENT = 'phone';
export const callbackStop = (url: URL) => url.port === '4000';

let counter = 0;

/** Push sign-in helpers against one test Nyckel and one fake push service. */
export function pushFlows(get: () => { nyckel: TestNyckel; push: FakePushService }) {
  const url = (path: string) => new URL(path, get().nyckel.url).toString();

  /** A user with no second factor yet (the only address is not verified). */
  async function newUser(prefix = 'phone') {
    const email = `${prefix}${++counter}-${Date.now()}@example.test`;
    const user = await get().nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    await get().nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
    return { email, user };
  }

  /** Account pages: sign in with the password, "Add a mobile device", name it; the page with the QR code. */
  async function startAddingPhone(email: string, label = 'My work phone', browser = new FormBrowser(callbackStop)) {
    let page = await browser.go(url('/account'));
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(new URL(page.url).pathname).toBe('/account');
    expect(textOf(page.html)).toContain('Add a mobile device');
    page = await browser.go(url('/account/add/push'));
    page = await browser.submit(page, '/account/add/push', { label });
    expect(page.status).toBe(200);
    const link = decodeEntities(/id="device-link" href="([^"]+)"/.exec(page.html)![1]);
    return { browser, page, link };
  }

  /** Adds a phone (simulated) to a new user through the real endpoints; the account page confirms it. */
  async function userWithPhone(options: { push?: boolean; pin?: string } = {}) {
    const { email, user } = await newUser();
    const { browser, page, link } = await startAddingPhone(email);
    const registered = await DeviceSimulator.register(link, { pin: options.pin ?? PIN, push: options.push === false ? undefined : get().push });
    expect(registered.status).toBe(201);
    const status = await browser.request(`${page.url}/status`);
    expect(JSON.parse(status.html)).toEqual({ status: 'registered' });
    const finish = await browser.go(page.url);
    expect(textOf(finish.html)).toContain('Your phone “My work phone” is registered');
    const done = await browser.submit(finish, '/done', {});
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('Save your recovery codes');
    return { email, user, device: registered.device!, accountBrowser: browser };
  }

  /** Password at the `phone` client; the page after it. */
  async function passwordStep(email: string, browser = new FormBrowser(callbackStop)) {
    const config = await relyingParty(get().nyckel.url, CLIENT);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
    let page = await browser.go(start.url.toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    const uid = /\/interaction\/([^/]+)\//.exec(page.url)![1];
    return { config, start, browser, page, uid };
  }

  /** The push page of a sign-in: the number shown and where the page polls. */
  function pushPage(page: Page) {
    expect(page.status).toBe(200);
    const number = /id="push-number">(\d+)</.exec(page.html)![1];
    const challengePath = decodeEntities(/data-done-url="([^"]+)"/.exec(page.html)![1]);
    const challengeId = challengePath.split('/').pop()!;
    return { number, challengePath, challengeId };
  }

  /** Password, and the primary method "Nyckel Authenticator (push)" starts at once: the push has gone out. */
  async function pushSignIn(email: string) {
    const flow = await passwordStep(email);
    expect(new URL(flow.page.url).pathname).toMatch(/\/mfa\/push$/);
    return { ...flow, ...pushPage(flow.page) };
  }

  async function status(browser: FormBrowser, challengePath: string) {
    const response = await browser.request(url(`${challengePath}/status`));
    return JSON.parse(response.html) as { status: string; message?: string; number?: string; expiresIn?: number };
  }

  async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, page: Page) {
    expect(page.url).toContain('code=');
    return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
  }

  return { url, newUser, startAddingPhone, userWithPhone, passwordStep, pushPage, pushSignIn, status, tokensFrom };
}
