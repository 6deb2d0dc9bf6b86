// Passkeys through the hosted pages at the HTTP level, answered by a software authenticator (the
// browser tests use Chromium's virtual one): enrolment during sign-in, the passkey as second factor,
// the options in the page, answers without JavaScript or garbage, who may enrol one.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, decodeEntities, textOf, type Page } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { SoftAuthenticator } from '../support/soft-authenticator.ts';

let nyckel: TestNyckel;
const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
const CLIENT = 'keys';
const VERIFY = /\/mfa\/passkey\/challenge\/[0-9a-f-]{36}\/verify$/;
const ENROL_VERIFY = /\/mfa\/enrol\/passkey\/challenge\/[0-9a-f-]{36}\/verify$/;

beforeAll(async () => {
  nyckel = await startTestNyckel();
});
afterAll(() => nyckel?.stop());

/** A user with no second factor yet (the only address unverified), or with a verified address. */
async function newUser(options: { verified?: boolean; name?: string } = {}) {
  const email = `key${++counter}@keys.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (!options.verified) await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  if (options.name) await nyckel.db.prisma.user.update({ where: { id: user.id }, data: { name: options.name } });
  return { email, user };
}

async function passwordStep(email: string, browser = new FormBrowser(callbackStop)) {
  const config = await relyingParty(nyckel.url, CLIENT);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: Awaited<ReturnType<typeof startAuthorization>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

/** The options JSON the page hands to its script. */
function optionsIn(page: Page) {
  const json = /<script type="application\/json" data-passkey-options>([\s\S]*?)<\/script>/.exec(page.html);
  if (!json) throw new Error(`no passkey options in page:\n${textOf(page.html).slice(0, 1000)}`);
  return JSON.parse(json[1]) as {
    challenge: string;
    rp?: { id: string };
    rpId?: string;
    user?: { name: string; displayName: string };
    allowCredentials?: { id: string }[];
  };
}

/** Signs in to the keys client, registering `key` on the way (recovery codes come with it). */
async function enrolled(key = new SoftAuthenticator(nyckel.url, { userVerified: false }), options: { name?: string } = {}) {
  const { email, user } = await newUser(options);
  const flow = await passwordStep(email);
  expect(flow.page.url).toMatch(/\/mfa\/enrol$/);
  expect(textOf(flow.page.html)).toContain('Set up a passkey');
  const ceremony = await flow.browser.submit(flow.page, '/mfa/enrol/passkey/start', {});
  expect(ceremony.status).toBe(200);
  const done = await flow.browser.submit(ceremony, ENROL_VERIFY, { label: 'Work key', credential: JSON.stringify(key.register(optionsIn(ceremony) as never)) });
  expect(textOf(done.html)).toContain('recovery');
  const tokens = await tokensFrom(flow.config, flow.start, await flow.browser.submit(done, '/mfa/continue', {}));
  return { email, user, key, ceremony, tokens };
}

describe('passkeys through the hosted pages', () => {
  test('registered during sign-in (a name, the ceremony), then the second factor of the next sign-in', async () => {
    const { email, user, key, ceremony, tokens } = await enrolled();
    // Touched but not verified (no PIN, no fingerprint): a hardware key, without `user`.
    expect(tokens.claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'hwk', 'mfa'] });
    expect(ceremony.html).toContain('data-passkey="register"');
    expect(ceremony.html).toMatch(/<label for="label">Name \(optional\)<\/label>/);
    expect(ceremony.html).toContain('<script src="/assets/passkey.js" defer></script>');
    expect(optionsIn(ceremony)).toMatchObject({ rp: { id: 'localhost', name: 'Nyckel' }, user: { name: email }, excludeCredentials: [] });
    expect(await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId: user.id, type: 'passkey' } })).toMatchObject({
      label: 'Work key',
      confirmed: true,
    });

    const next = await passwordStep(email);
    // The only method of this client the user has: straight to its page.
    expect(next.page.url).toMatch(/\/mfa\/passkey\?send=1$/);
    expect(next.page.html).toContain('data-passkey="authenticate"');
    expect(textOf(next.page.html)).toContain('Use your passkey');
    const options = optionsIn(next.page);
    expect(options).toMatchObject({ rpId: 'localhost', allowCredentials: [{ id: key.id }] });
    const done = await next.browser.submit(next.page, VERIFY, { credential: JSON.stringify(key.authenticate(options)) });
    expect((await tokensFrom(next.config, next.start, done)).claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'hwk', 'mfa'] });
  });

  test('"don\'t ask again in this browser" is chosen with the passkey, as with an app\'s code', async () => {
    const { email, key } = await enrolled();
    const first = await passwordStep(email);
    expect(first.page.html).toMatch(/<input type="checkbox" name="remember" id="remember" value="yes">/);
    const done = await first.browser.submit(first.page, VERIFY, { remember: 'yes', credential: JSON.stringify(key.authenticate(optionsIn(first.page))) });
    await tokensFrom(first.config, first.start, done);
    // The same browser, a new login (prompt=login): the password alone, reported as such.
    const config = await relyingParty(nyckel.url, CLIENT);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email', prompt: 'login' });
    const login = await first.browser.go(start.url.toString());
    const back = await first.browser.submit(login, '/login', { email, password: TEST_PASSWORD });
    expect((await tokensFrom(config, start, back)).claims()).toMatchObject({ acr: 'urn:nyckel:acr:password', amr: ['pwd'] });
  });

  test('without JavaScript the page says so; an empty or unreadable answer is a 400 with a message, and the page can be used again', async () => {
    const { email, key } = await enrolled();
    const flow = await passwordStep(email);
    expect(decodeEntities(flow.page.html)).toMatch(
      /<noscript><div class="alert" role="alert">Passkeys need JavaScript, which is turned off in this browser\. Turn it on, or use another method\.<\/div><\/noscript>/,
    );
    const empty = await flow.browser.submit(flow.page, VERIFY, {});
    expect(empty.status).toBe(400);
    expect(textOf(empty.html)).toContain('Your browser did not send a passkey answer we can read.');
    const garbage = await flow.browser.submit(empty, VERIFY, { credential: '{"id":' });
    expect(garbage.status).toBe(400);
    const tooLarge = await flow.browser.submit(garbage, VERIFY, { credential: 'x'.repeat(40_000) });
    expect(tooLarge.status).toBe(400);
    // Each refusal shows a fresh challenge; the last page shown still works.
    const done = await flow.browser.submit(garbage, VERIFY, { credential: JSON.stringify(key.authenticate(optionsIn(garbage))) });
    expect((await tokensFrom(flow.config, flow.start, done)).claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa' });
  });

  test('a wrong answer is a 401 with the passkey message, counted; no 500 for any shape', async () => {
    const { email, key } = await enrolled();
    const other = new SoftAuthenticator(nyckel.url);
    const flow = await passwordStep(email);
    const wrong = await flow.browser.submit(flow.page, VERIFY, { credential: JSON.stringify(other.authenticate(optionsIn(flow.page))) });
    expect(wrong.status).toBe(401);
    expect(textOf(wrong.html)).toContain(
      'That passkey was not accepted: it is not registered for your account, or it was removed. You have 4 more attempt(s).',
    );
    let page = wrong;
    for (const shape of ['null', '[]', '{}', '"text"', '{"id":"x","rawId":"x","type":"public-key","response":{"clientDataJSON":"!!"}}']) {
      page = await flow.browser.submit(page, VERIFY, { credential: shape });
      expect([shape, page.status >= 400 && page.status < 500]).toEqual([shape, true]);
    }
    const locked = await flow.browser.submit(page, VERIFY, { credential: JSON.stringify(key.authenticate(optionsIn(page))) });
    expect(locked.status).toBe(429);
    expect(locked.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  test('the options are safe inside the page whatever the user is called', async () => {
    const name = '</script><script>alert(1)</script> & "Åsa"';
    const { email } = await newUser({ name });
    const flow = await passwordStep(email);
    const ceremony = await flow.browser.submit(flow.page, '/mfa/enrol/passkey/start', {});
    expect(ceremony.html).not.toContain('<script>alert(1)');
    expect(optionsIn(ceremony).user).toMatchObject({ displayName: name });
  });

  test('a user who already has a second factor cannot add a passkey during sign-in', async () => {
    const { email } = await newUser({ verified: true });
    const flow = await passwordStep(email);
    // The email code at once; the enrolment pages do not offer a passkey.
    const enrol = await flow.browser.go(new URL(flow.page.url.replace(/\/mfa\/.*$/, '/mfa/enrol'), nyckel.url).toString());
    expect(textOf(enrol.html)).not.toContain('Set up a passkey');
    const csrf = /name="_csrf" value="([^"]+)"/.exec(flow.page.html)![1];
    const start = await flow.browser.request(new URL(flow.page.url.replace(/\/mfa\/.*$/, '/mfa/enrol/passkey/start'), nyckel.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: decodeEntities(csrf) }).toString(),
    });
    expect(start.status).toBe(404);
  });
});

describe('a passkey instead of the password (clients with mfa.passwordless: [passkey])', () => {
  const handleOf = (id: string) => Buffer.from(id.replace(/-/g, ''), 'hex').toString('base64url');

  async function passkeyLoginPage(browser = new FormBrowser(callbackStop)) {
    const config = await relyingParty(nyckel.url, CLIENT);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
    const login = await browser.go(start.url.toString());
    const link = /href="([^"]*\/passkey-login)"/.exec(login.html);
    expect(link).not.toBeNull();
    expect(textOf(login.html)).toContain('Sign in with a passkey');
    const page = await browser.go(new URL(link![1], nyckel.url).toString());
    expect(page.status).toBe(200);
    return { config, start, browser, page };
  }

  test('no password: a passkey with user verification signs in with acr mfa, amr hwk user mfa', async () => {
    const key = new SoftAuthenticator(nyckel.url, { userVerified: true });
    const { user } = await enrolled(key);
    const flow = await passkeyLoginPage();
    const options = optionsIn(flow.page);
    expect(options).toMatchObject({ rpId: 'localhost', userVerification: 'required' });
    expect(options.allowCredentials ?? []).toEqual([]);
    const done = await flow.browser.submit(flow.page, '/passkey-login', {
      credential: JSON.stringify(key.authenticate(options, { userHandle: handleOf(user.id) })),
    });
    expect((await tokensFrom(flow.config, flow.start, done)).claims()).toMatchObject({ sub: user.id, acr: 'urn:nyckel:acr:mfa', amr: ['hwk', 'user', 'mfa'] });
  });

  test('refused with a message: a key that did not verify the user, an unknown passkey, garbage; the page stays usable', async () => {
    const key = new SoftAuthenticator(nyckel.url, { userVerified: false });
    const { user } = await enrolled(key);
    const flow = await passkeyLoginPage();
    const quiet = await flow.browser.submit(flow.page, '/passkey-login', {
      credential: JSON.stringify(key.authenticate(optionsIn(flow.page), { userHandle: handleOf(user.id) })),
    });
    expect(quiet.status).toBe(400);
    expect(textOf(quiet.html)).toContain('Your passkey must be unlocked with your fingerprint, face or PIN to sign in without a password.');
    const stranger = new SoftAuthenticator(nyckel.url);
    const unknown = await flow.browser.submit(quiet, '/passkey-login', {
      credential: JSON.stringify(stranger.authenticate(optionsIn(quiet), { userHandle: handleOf(user.id) })),
    });
    expect(unknown.status).toBe(401);
    expect(textOf(unknown.html)).toContain('That passkey could not be used to sign in.');
    const garbage = await flow.browser.submit(unknown, '/passkey-login', { credential: '{"nope' });
    expect(garbage.status).toBe(400);
    const forged = await flow.browser.submit(garbage, '/passkey-login', { token: 'x', credential: '{}' });
    expect(forged.status).toBe(400);
    // The password still works from here.
    const back = await flow.browser.go(new URL(/href="(\/interaction\/[^"]+)"/.exec(forged.html)![1], nyckel.url).toString());
    expect(back.html).toContain('/login"');
  });

  test('not offered to clients without it', async () => {
    const browser = new FormBrowser(callbackStop);
    const config = await relyingParty(nyckel.url, 'selfservice');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid email' });
    const login = await browser.go(start.url.toString());
    expect(login.html).not.toContain('/passkey-login');
    const uid = /\/interaction\/([^/]+)\/login"/.exec(login.html)![1];
    expect((await browser.go(new URL(`/interaction/${uid}/passkey-login`, nyckel.url).toString())).status).toBe(404);
  });
});
