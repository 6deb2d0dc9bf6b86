import { switchBackTo } from '../../src/server/pages.ts';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser, findForm, textOf } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let config: oidc.Configuration;
const email = 'bad.input@example.test';
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
});
afterAll(() => nyckel?.stop());

function authorizeUrl(params: Record<string, string>) {
  const url = new URL('/auth', nyckel.url);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

const validParams = {
  client_id: 'web',
  response_type: 'code',
  scope: 'openid',
  redirect_uri: 'http://localhost:4000/cb',
  code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM',
  code_challenge_method: 'S256',
  state: 's1',
  // The consent page every time, although the test user allowed the app before.
  prompt: 'consent',
};

async function loginPage() {
  const browser = new FormBrowser(callbackStop);
  const page = await browser.go(authorizeUrl(validParams));
  expect(page.status).toBe(200);
  return { browser, page, form: findForm(page.html, '/login') };
}

describe('protocol errors', () => {
  test('an unknown client gets an explanatory page and no redirect', async () => {
    const response = await fetch(authorizeUrl({ ...validParams, client_id: 'nope' }), { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(textOf(await response.text())).toContain('invalid_client');
  });

  test('a redirect_uri that is not registered is never redirected to', async () => {
    const response = await fetch(authorizeUrl({ ...validParams, redirect_uri: 'https://evil.example/cb' }), { redirect: 'manual' });
    expect(response.status).toBe(400);
    expect(response.headers.get('location')).toBeNull();
    expect(textOf(await response.text())).toContain('redirect_uri');
  });

  test('PKCE is required, and only S256', async () => {
    const { code_challenge: _c, code_challenge_method: _m, ...withoutPkce } = validParams;
    for (const params of [withoutPkce, { ...validParams, code_challenge_method: 'plain' }]) {
      const response = await fetch(authorizeUrl(params), { redirect: 'manual' });
      expect(response.status).toBe(303);
      const location = new URL(response.headers.get('location')!);
      expect(location.origin).toBe('http://localhost:4000');
      expect(location.searchParams.get('error')).toBe('invalid_request');
      expect(location.searchParams.get('error_description')).toMatch(/PKCE|code_challenge/);
    }
  });

  test('the implicit flow is not offered', async () => {
    const response = await fetch(authorizeUrl({ ...validParams, response_type: 'id_token token', nonce: 'n' }), { redirect: 'manual' });
    expect(response.status).toBeLessThan(500);
    const location = response.headers.get('location');
    const error = location ? new URL(location.replace('#', '?')).searchParams.get('error') : textOf(await response.text());
    expect(error).toMatch(/unsupported_response_type/);
  });

  test('a reused authorization code is refused and revokes what the first use issued', async () => {
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid offline_access', prompt: 'consent' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: start.verifier,
      expectedState: start.state,
      expectedNonce: start.nonce,
    });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(true);
    await expect(
      oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('one authorization code exchanged in parallel: exactly one exchange wins', async () => {
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb' });
    const { callback } = await signInWithPassword(browser, start, { email, password: TEST_PASSWORD });
    const code = callback.searchParams.get('code')!;
    const attempts = await Promise.all(
      Array.from({ length: 10 }, () =>
        fetch(new URL('/token', nyckel.url), {
          method: 'POST',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: `Basic ${Buffer.from('web:web-secret-web-secret-0001').toString('base64')}`,
          },
          body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: 'http://localhost:4000/cb', code_verifier: start.verifier }),
        }).then(async (r) => ({ status: r.status, body: (await r.json()) as Record<string, string> })),
      ),
    );
    expect(attempts.filter((a) => a.status === 200)).toHaveLength(1);
    for (const refused of attempts.filter((a) => a.status !== 200)) {
      expect(refused.status).toBe(400);
      expect(refused.body.error).toBe('invalid_grant');
    }
  });

  test('the token endpoint answers garbage with OAuth errors, not 500', async () => {
    const token = new URL('/token', nyckel.url);
    const cases: RequestInit[] = [
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '%%%&&&==' },
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"grant_type":' },
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=${'x'.repeat(200_000)}` },
      { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password&username=a&password=b&client_id=web' },
    ];
    for (const init of cases) {
      const response = await fetch(token, init);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      const body = (await response.json()) as { error: string };
      expect(typeof body.error).toBe('string');
    }
  });
});

describe('hosted page input', () => {
  test('a wrong CSRF token is refused with 403 and a way to try again', async () => {
    const { browser, page } = await loginPage();
    const refused = await browser.submit(page, '/login', { email, password: TEST_PASSWORD, _csrf: 'forged' });
    expect(refused.status).toBe(403);
    expect(textOf(refused.html)).toContain('The form had expired or did not come from this page');
  });

  test('a form post from a browser without the CSRF cookie is refused', async () => {
    const { page, form } = await loginPage();
    const response = await fetch(new URL(form.action, page.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, email, password: TEST_PASSWORD }),
      redirect: 'manual',
    });
    expect([400, 403]).toContain(response.status);
  });

  test('malformed and oversized form bodies get clear 4xx pages', async () => {
    const { browser, page, form } = await loginPage();
    const url = new URL(form.action, page.url).toString();
    const json = await browser.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":"x"}' });
    expect(json.status).toBe(415);
    expect(textOf(json.html)).toContain('The form was sent in a way this page does not accept');

    const repeated = await browser.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(form.hidden._csrf)}&email=a@b.se&email=c@d.se&password=x`,
    });
    expect(repeated.status).toBe(400);

    const huge = await browser.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `_csrf=${encodeURIComponent(form.hidden._csrf)}&email=${'a'.repeat(100_000)}`,
    });
    expect(huge.status).toBe(413);
    expect(textOf(huge.html)).toContain('too large');

    // Nothing was lost: the same page still signs in.
    const ok = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(ok.html).toContain('/consent"');
  });

  test('the language switcher goes back only to a path on this site, and knows only its languages', async () => {
    const go = (path: string) => fetch(`${nyckel.url}${path}`, { redirect: 'manual' });
    const kept = await go(`/language/da?back=${encodeURIComponent('/interaction/abc/mfa?choose=1')}`);
    expect([kept.status, kept.headers.get('location')]).toEqual([303, '/interaction/abc/mfa?choose=1']);
    expect(kept.headers.get('set-cookie')).toMatch(/^nyckel\.lang=da;.*httponly/i);
    for (const back of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', '/a\r\nSet-Cookie: x=1', '/a b']) {
      expect((await go(`/language/sv?back=${encodeURIComponent(back)}`)).headers.get('location')).toBe('/');
    }
    expect((await go('/language/fr')).status).toBe(404);
  });

  test("a page answering a form returns the switcher to the page of the same step, not to the form's target", () => {
    expect(switchBackTo({ method: 'GET', url: '/interaction/u1/mfa/totp?x=1', path: '/interaction/u1/mfa/totp' })).toBe('/interaction/u1/mfa/totp?x=1');
    expect(switchBackTo({ method: 'POST', url: '/interaction/u1/mfa/totp/challenge/app/verify', path: '/interaction/u1/mfa/totp/challenge/app/verify' })).toBe(
      '/interaction/u1/mfa',
    );
    expect(switchBackTo({ method: 'POST', url: '/interaction/u1/login', path: '/interaction/u1/login' })).toBe('/interaction/u1');
    expect(switchBackTo({ method: 'POST', url: '/interaction/u1/forgot-password/code', path: '/interaction/u1/forgot-password/code' })).toBe(
      '/interaction/u1/forgot-password',
    );
    expect(switchBackTo({ method: 'POST', url: '/account/password', path: '/account/password' })).toBe('/account');
  });

  test('an unknown path is a localised page with a heading and a main landmark (JSON for programs), not plain text', async () => {
    const page = await fetch(`${nyckel.url}/no-such-page`, { headers: { 'accept-language': 'sv', accept: 'text/html' } });
    expect(page.status).toBe(404);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('<html lang="sv">');
    expect(html).toMatch(/<main id="main"/);
    expect(html).toMatch(/<h1>[^<]+<\/h1>/);
    expect(textOf(html)).toContain('Sidan finns inte.');
    const json = await fetch(`${nyckel.url}/no-such-page`, { headers: { accept: 'application/json' } });
    expect([json.status, await json.json()]).toEqual([404, { error: 'not_found', error_description: 'not_found' }]);
    // oidc-provider's own paths are still its.
    expect((await fetch(`${nyckel.url}/.well-known/openid-configuration`)).status).toBe(200);
    expect((await fetch(`${nyckel.url}/jwks`)).status).toBe(200);
  });

  test('an unknown or expired interaction shows a friendly page, not SessionNotFound', async () => {
    const browser = new FormBrowser();
    const page = await browser.go(new URL('/interaction/does-not-exist', nyckel.url).toString(), { headers: { 'accept-language': 'sv' } });
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('Inloggningssidan har gått ut eller har redan använts');
    expect(page.html).not.toContain('SessionNotFound');

    const post = await browser.request(new URL('/interaction/does-not-exist/login', nyckel.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'email=a&password=b',
    });
    expect(post.status).toBe(400);
  });

  test('a finished interaction cannot be replayed', async () => {
    const { browser, page } = await loginPage();
    const consent = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    const done = await browser.submit(consent, '/consent', { decision: 'allow' });
    expect(new URL(done.url).searchParams.get('code')).toBeTruthy();
    // The same form again: nothing is issued twice, and the page says what happened instead of "expired".
    const again = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(again.status).toBe(200);
    expect(again.url).not.toContain('code=');
    expect(textOf(again.html)).toContain('You are already signed in');
    expect(textOf(again.html)).toContain('This sign-in was finished, in this tab or another one. Go back to Statistics portal to continue.');
  });

  test('a sign-in that never finished is still "expired" when its interaction is gone', async () => {
    const { browser, page } = await loginPage();
    await browser.jar.removeAllCookies();
    const gone = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    expect(gone.status).toBe(400);
    expect(textOf(gone.html)).toContain('has expired or has already been used');
  });

  test('unknown paths are a 404 page, JSON clients get JSON', async () => {
    const html = await fetch(new URL('/no/such/page', nyckel.url), { headers: { accept: 'text/html' } });
    expect(html.status).toBe(404);
    const json = await fetch(new URL('/interaction/x/nothing', nyckel.url), { method: 'POST', headers: { accept: 'application/json' } });
    expect(json.status).toBeLessThan(500);
  });

  test('security headers on hosted pages', async () => {
    const { page } = await loginPage();
    expect(page.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('cache-control')).toBe('no-store');
  });
});
