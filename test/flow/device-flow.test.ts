import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { DEVICE_CODE_GRANT, parseClientsFile } from '../../src/clients/clients-file.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { codeAt, withAuthenticatorApp } from '../support/otp.ts';
import { relyingParty } from '../support/relying-party.ts';

/**
 * A TV app (public, device grant only, no redirect URIs) whose sign-in needs an authenticator app, and
 * a third-party command-line tool (a password, and consent).
 */
const deviceClientsYaml = testClientsYaml.replace(
  'resources:',
  `  - client_id: tv
    name: Living room TV
    first_party: true
    token_endpoint_auth_method: none
    grant_types: [${DEVICE_CODE_GRANT}, refresh_token]
    scopes: [openid, email, offline_access]
    mfa: { required: true, methods: [totp] }
  - client_id: cli
    name: Reports CLI
    token_endpoint_auth_method: none
    grant_types: [${DEVICE_CODE_GRANT}]
    scopes: [openid, email]
resources:`,
);
const GUESSES_PER_IP = 5;

let nyckel: TestNyckel;
let counter = 0;

beforeAll(async () => {
  nyckel = await startTestNyckel({
    clients: parseClientsFile(deviceClientsYaml, 'device-clients.yaml'),
    env: { NYCKEL_TRUST_PROXY: 'true', NYCKEL_DEVICE_CODE_TTL: '60', NYCKEL_DEVICE_CODE_GUESSES_PER_IP: String(GUESSES_PER_IP) },
  });
});
afterAll(() => nyckel?.stop());

/** A user with an authenticator app (the TV's second factor). */
async function newUser() {
  const email = `tv${++counter}@device.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  return { email, user, secret: await withAuthenticatorApp(nyckel, user.id) };
}

/** The TV: asks for a device sign-in. */
async function startOnDevice(clientId = 'tv', scope = 'openid email offline_access') {
  const config = await relyingParty(nyckel.url, clientId);
  const auth = await oidc.initiateDeviceAuthorization(config, { scope });
  return { config, auth };
}

/** The TV polls once (the phone's part is already done, so no 5 s wait before the first poll). */
function pollOnce(device: Awaited<ReturnType<typeof startOnDevice>>) {
  return oidc.pollDeviceAuthorizationGrant(device.config, { ...device.auth, interval: 0 }, undefined, { signal: AbortSignal.timeout(5000) });
}

/** One poll of the token endpoint, as a device without a library would. */
async function rawPoll(deviceCode: string) {
  const answer = await fetch(`${nyckel.url}/token`, {
    method: 'POST',
    body: new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: deviceCode, client_id: 'tv' }),
  });
  expect(answer.status).toBe(400);
  return answer.json();
}

/** The phone: a code typed on the code page, from `ip` (X-Forwarded-For; the test server trusts the proxy). */
async function typeCode(browser: FormBrowser, code: string, ip = '198.51.100.1', page?: Page): Promise<Page> {
  const entry = page ?? (await browser.go(`${nyckel.url}/device`));
  return browser.submit(entry, '/device', { user_code: code }, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
}

/** The phone: code, confirmation, password and authenticator code; the last page (the device page's end). */
async function signInOnPhone(userCode: string, email: string, secret: string) {
  const browser = new FormBrowser();
  const confirm = await typeCode(browser, userCode);
  expect(confirm.status).toBe(200);
  const login = await browser.submit(confirm, '/device', { confirm: 'yes' });
  expect(login.url).toMatch(/\/interaction\/[^/]+$/);
  const app = await browser.submit(login, '/login', { username: email, password: TEST_PASSWORD });
  expect(app.url).toMatch(/\/mfa\/totp(\?send=1)?$/);
  const done = await browser.submit(app, '/verify', { code: await codeAt(secret, 0) });
  return { browser, confirm, done };
}

describe('device sign-in (RFC 8628)', () => {
  test('code typed on the phone, confirmed, password and app: the device gets tokens for that user', async () => {
    const { email, user, secret } = await newUser();
    const device = await startOnDevice();
    expect(device.auth.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(device.auth.verification_uri).toBe(`${nyckel.url}/device`);
    expect(device.auth.expires_in).toBeLessThanOrEqual(60);

    const { confirm, done } = await signInOnPhone(device.auth.user_code.toLowerCase().replace('-', ' '), email, secret);
    // The confirmation names the client and repeats the code, to be compared with the TV's.
    expect(textOf(confirm.html)).toContain('Sign in to Living room TV on the device?');
    expect(textOf(confirm.html)).toContain(device.auth.user_code);
    expect(textOf(confirm.html)).toContain('Never enter or confirm a code someone else has given you');
    expect(done.status).toBe(200);
    expect(textOf(done.html)).toContain('You are signed in to Living room TV on the device.');

    const tokens = await pollOnce(device);
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'], aud: 'tv' });
    expect(tokens.refresh_token).toBeTruthy();
  });

  test('a third-party CLI: password, consent, and tokens with the password’s acr', async () => {
    const { email, user } = await newUser();
    const device = await startOnDevice('cli', 'openid email');
    const browser = new FormBrowser();
    const login = await browser.submit(await typeCode(browser, device.auth.user_code), '/device', { confirm: 'yes' });
    const consent = await browser.submit(login, '/login', { username: email, password: TEST_PASSWORD });
    expect(textOf(consent.html)).toContain('Reports CLI');
    const done = await browser.submit(consent, '/consent', { decision: 'allow' });
    expect(textOf(done.html)).toContain('You are signed in to Reports CLI on the device.');
    const tokens = await pollOnce(device);
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:password', amr: ['pwd'], aud: 'cli' });
  });

  test('a browser already signed in goes from the confirmation straight to the end, for the same user', async () => {
    const { email, user, secret } = await newUser();
    const first = await startOnDevice();
    const { browser } = await signInOnPhone(first.auth.user_code, email, secret);
    await pollOnce(first);
    const second = await startOnDevice();
    const confirm = await typeCode(browser, second.auth.user_code);
    const done = await browser.submit(confirm, '/device', { confirm: 'yes' });
    expect(textOf(done.html)).toContain('You are signed in to Living room TV on the device.');
    expect((await pollOnce(second)).claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa' });
  });

  test('the link with the code (verification_uri_complete) opens the code page with the code filled in', async () => {
    const device = await startOnDevice();
    const browser = new FormBrowser();
    // The code page in the browser's language with the code filled in: the user sends it, no script does.
    const entry = await browser.go(device.auth.verification_uri_complete!, { headers: { 'accept-language': 'da' } });
    expect(entry.status).toBe(200);
    expect(textOf(entry.html)).toContain('Indtast koden, der vises på dit tv');
    expect(entry.html).toContain(`value="${device.auth.user_code}"`);
    expect(entry.html).not.toContain('<script');
    const confirm = await browser.submit(
      entry,
      '/device',
      { user_code: device.auth.user_code },
      { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '198.51.100.4' } },
    );
    expect(textOf(confirm.html)).toContain('Sign in to Living room TV on the device?');
    expect(textOf(confirm.html)).toContain(device.auth.user_code);
  });

  test('the code page answers 200; a link naming the code twice gets it with a localised error, not oidc-provider’s page', async () => {
    const browser = new FormBrowser();
    expect((await browser.go(`${nyckel.url}/device`)).status).toBe(200);
    const twice = await browser.go(`${nyckel.url}/device?user_code=BBBB-BBBB&user_code=CCCC-CCCC`, { headers: { 'accept-language': 'sv' } });
    expect(twice.status).toBe(400);
    expect(textOf(twice.html)).toContain('Koden stämmer inte, eller så har den gått ut.');
    expect(twice.html).not.toContain('Submitting Callback');
  });

  test('the pages speak the browser’s language (Swedish, Danish)', async () => {
    const device = await startOnDevice();
    for (const [language, entryText, confirmText] of [
      ['sv', 'Ange koden som visas på din tv', 'Logga in på Living room TV på enheten?'],
      ['da', 'Indtast koden, der vises på dit tv', 'Log ind på Living room TV på enheden?'],
    ]) {
      const browser = new FormBrowser();
      const entry = await browser.go(`${nyckel.url}/device`, { headers: { 'accept-language': language } });
      expect(textOf(entry.html)).toContain(entryText);
      const confirm = await browser.submit(
        entry,
        '/device',
        { user_code: device.auth.user_code },
        {
          headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': language },
        },
      );
      expect(textOf(confirm.html)).toContain(confirmText);
    }
  });

  test('a wrong code: a localised error on the page, and the device gets no token', async () => {
    const device = await startOnDevice();
    const browser = new FormBrowser();
    const entry = await browser.go(`${nyckel.url}/device`, { headers: { 'accept-language': 'sv' } });
    const wrong = await browser.submit(
      entry,
      '/device',
      { user_code: 'BBBB-BBBB' },
      {
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'sv', 'x-forwarded-for': '198.51.100.2' },
      },
    );
    expect(wrong.status).toBe(400);
    expect(textOf(wrong.html)).toContain('Koden stämmer inte, eller så har den gått ut.');
    expect(wrong.html).toContain('aria-invalid="true"');
    expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'authorization_pending' });
  });

  test('garbage codes and forms (arrays, huge, unicode, no token) get the localised code page with a 400, never a 500', async () => {
    const browser = new FormBrowser();
    const entry = await browser.go(`${nyckel.url}/device`);
    const xsrf = /name="xsrf" value="([^"]*)"/.exec(entry.html)![1];
    const bodies = [
      `xsrf=${xsrf}&user_code=BBBB&user_code=CCCC`,
      `xsrf=${xsrf}&user_code[]=BBBB`,
      `xsrf=${xsrf}&user_code=${'B'.repeat(200_000)}`,
      `xsrf=${xsrf}&user_code=${encodeURIComponent('ＢＢＢＢ-ＢＢＢＢ\u0000ß🙂')}`,
      `xsrf=${xsrf}&xsrf=${xsrf}&user_code=BBBB-BBBB`,
      'user_code=BBBB-BBBB',
      '%%%',
    ];
    for (const [i, body] of bodies.entries()) {
      const page = await browser.request(`${nyckel.url}/device`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-language': 'sv', 'x-forwarded-for': `198.51.100.${100 + i}` },
        body,
      });
      expect([body.slice(0, 40), page.status]).toEqual([body.slice(0, 40), 400]);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      expect(textOf(page.html)).toContain('Logga in på en enhet');
      expect(page.html).not.toMatch(/\bat \S+ \(|Error:/);
    }
  });

  test('a device polling sooner than every 5 seconds is told slow_down', async () => {
    const device = await startOnDevice();
    expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'authorization_pending' });
    expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'slow_down' });
  });

  test('a form without the page’s token is refused', async () => {
    const device = await startOnDevice();
    const browser = new FormBrowser();
    await browser.go(`${nyckel.url}/device`);
    const forged = await browser.request(`${nyckel.url}/device`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '198.51.100.3' },
      body: new URLSearchParams({ user_code: device.auth.user_code, confirm: 'yes', xsrf: 'forged' }).toString(),
    });
    expect(forged.status).toBe(400);
    expect(textOf(forged.html)).toContain('The code could not be checked.');
    expect(forged.html).not.toContain('/interaction/');
  });

  test('“No, cancel” on the confirmation: the device is told access_denied', async () => {
    const device = await startOnDevice();
    const browser = new FormBrowser();
    const confirm = await typeCode(browser, device.auth.user_code);
    const cancelled = await browser.submit(confirm, '/device', { abort: 'yes' });
    expect(textOf(cancelled.html)).toContain('The sign-in was cancelled.');
    await expect(pollOnce(device)).rejects.toMatchObject({ error: 'access_denied' });
  });

  test('“Cancel” on the sign-in page after confirming: the device is told access_denied', async () => {
    const device = await startOnDevice();
    const browser = new FormBrowser();
    const login = await browser.submit(await typeCode(browser, device.auth.user_code), '/device', { confirm: 'yes' });
    const cancelled = await browser.submit(login, '/abort', {});
    expect(textOf(cancelled.html)).toContain('The sign-in was cancelled.');
    // Switching language there leads to the code page, not to the finished sign-in again.
    expect(cancelled.html).toContain(`href="/language/sv?back=${encodeURIComponent('/device')}"`);
    await expect(pollOnce(device)).rejects.toMatchObject({ error: 'access_denied' });
  });

  test('a code works once: typed again after the sign-in it is refused, and the device code is exchanged once', async () => {
    const { email, secret } = await newUser();
    const device = await startOnDevice();
    await signInOnPhone(device.auth.user_code, email, secret);
    const again = await typeCode(new FormBrowser(), device.auth.user_code);
    expect(again.status).toBe(400);
    expect(textOf(again.html)).toContain('That code has already been used.');
    await pollOnce(device);
    await expect(pollOnce(device)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a code confirmed in two browsers at once goes on to one sign-in only', async () => {
    const device = await startOnDevice();
    const browsers = [new FormBrowser(), new FormBrowser()];
    const confirms = await Promise.all(browsers.map((browser) => typeCode(browser, device.auth.user_code)));
    const answers = await Promise.all(browsers.map((browser, i) => browser.submit(confirms[i], '/device', { confirm: 'yes' })));
    expect(answers.filter((page) => /\/interaction\/[^/]+$/.test(page.url))).toHaveLength(1);
    const refused = answers.find((page) => !page.url.includes('/interaction/'))!;
    expect(refused.status).toBe(400);
    expect(textOf(refused.html)).toContain('That code has already been used.');
  });

  test('a code confirmed and cancelled at once: one answer wins, the other is told the code was used', async () => {
    for (let round = 0; round < 3; round++) {
      const device = await startOnDevice();
      const browsers = [new FormBrowser(), new FormBrowser()];
      const confirms = await Promise.all(browsers.map((browser) => typeCode(browser, device.auth.user_code)));
      const [confirmed, cancelled] = await Promise.all([
        browsers[0].submit(confirms[0], '/device', { confirm: 'yes' }),
        browsers[1].submit(confirms[1], '/device', { abort: 'yes' }),
      ]);
      const signIn = /\/interaction\/[^/]+$/.test(confirmed.url);
      const cancel = textOf(cancelled.html).includes('The sign-in was cancelled.');
      expect([signIn, cancel]).toContainEqual(true);
      expect(signIn && cancel).toBe(false);
      const loser = signIn ? cancelled : confirmed;
      expect(loser.status).toBe(400);
      expect(textOf(loser.html)).toContain('That code has already been used.');
      if (signIn) expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'authorization_pending' });
      else expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'access_denied' });
    }
  });

  test('an expired code is refused on the page and at the token endpoint', async () => {
    const device = await startOnDevice();
    // A minute later (NYCKEL_DEVICE_CODE_TTL=60) by oidc-provider's clock, whichever store keeps the code.
    const later = Date.now() + 61_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      const late = await typeCode(new FormBrowser(), device.auth.user_code);
      expect(late.status).toBe(400);
      expect(textOf(late.html)).toContain('That code has expired. Start the sign-in again on the device');
      expect(await rawPoll(device.auth.device_code)).toMatchObject({ error: 'expired_token' });
    } finally {
      clock.mockRestore();
    }
  });

  test('a client without the device grant is refused with unauthorized_client', async () => {
    const answer = await fetch(`${nyckel.url}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'spa', scope: 'openid' }) });
    expect(answer.status).toBe(400);
    expect(await answer.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  test('discovery advertises the device endpoint', async () => {
    const discovery = (await (await fetch(`${nyckel.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.device_authorization_endpoint).toBe(`${nyckel.url}/device/auth`);
    expect(discovery.grant_types_supported).toContain(DEVICE_CODE_GRANT);
  });

  test(`after ${GUESSES_PER_IP} wrong codes from one address even the right code is refused (429), other addresses go on`, async () => {
    const device = await startOnDevice();
    const ip = '203.0.113.9';
    const browser = new FormBrowser();
    // Right codes do not count: a few sign-ins never use the budget up.
    for (let i = 0; i < GUESSES_PER_IP + 1; i++) expect((await typeCode(browser, device.auth.user_code, ip)).status).toBe(200);
    const wrong = await Promise.all(Array.from({ length: GUESSES_PER_IP + 2 }, () => typeCode(new FormBrowser(), 'BBBB-BBBB', ip)));
    expect(wrong.map((page) => page.status).filter((status) => status === 400)).toHaveLength(GUESSES_PER_IP);
    const refused = await typeCode(browser, device.auth.user_code, ip);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(textOf(refused.html)).toContain('Too many attempts.');
    expect((await typeCode(new FormBrowser(), device.auth.user_code, '203.0.113.10')).status).toBe(200);
  });

  test('the code page with a trailing slash (which oidc-provider also answers) counts guesses all the same', async () => {
    const ip = '203.0.113.11';
    const browser = new FormBrowser();
    const entry = await browser.go(`${nyckel.url}/device`);
    const guess = () =>
      browser.submit(entry, '/device', { user_code: 'BBBB-BBBB' }, { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } });
    const slashed = { ...entry, html: entry.html.replace('action="/device"', 'action="/device/"') };
    const slashedGuess = () =>
      browser.submit(
        slashed,
        '/device/',
        { user_code: 'BBBB-BBBB' },
        { headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': ip } },
      );
    const statuses = [];
    for (let i = 0; i < GUESSES_PER_IP + 1; i++) statuses.push((await slashedGuess()).status);
    expect(statuses).toEqual([...Array.from({ length: GUESSES_PER_IP }, () => 400), 429]);
    expect((await guess()).status).toBe(429);
  });
});

describe('without a device client', () => {
  let plain: TestNyckel;
  beforeAll(async () => {
    plain = await startTestNyckel();
  });
  afterAll(() => plain?.stop());

  test('discovery has no device endpoint, and the endpoint is not there', async () => {
    const discovery = (await (await fetch(`${plain.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.device_authorization_endpoint).toBeUndefined();
    expect(discovery.grant_types_supported).not.toContain(DEVICE_CODE_GRANT);
    const answer = await fetch(`${plain.url}/device/auth`, { method: 'POST', body: new URLSearchParams({ client_id: 'spa' }) });
    expect(answer.status).toBe(404);
  });
});
