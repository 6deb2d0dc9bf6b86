// OIDC Front-Channel Logout 1.0: signing out at one app (RP-initiated logout) loads the front-channel
// logout URL of every app of the session in a hidden frame, then goes on to the post_logout_redirect_uri.
import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { decodeEntities, type Page } from '../support/browser.ts';
import { Chromium, interceptRelyingParty } from '../support/chromium.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { startAuthorization } from '../support/relying-party.ts';
import { signInToWebAndSpa, startLogoutReceiver } from '../support/logout.ts';

/** The apps' front-channel logout pages (one loopback server, two origins): every request, as its URL. */
let apps: Awaited<ReturnType<typeof startLogoutReceiver>>;
let port: number;
let nyckel: TestNyckel;
let chromium: Chromium;
const email = 'frontchannel.logout@example.test';
/** Its only address is unverified: the account pages then ask for no second factor (as in test/flow/account.test.ts). */
const accountPagesEmail = 'frontchannel.account@example.test';

const webLogoutUri = () => `http://127.0.0.1:${port}/web-logout?tenant=a%20b`;
const spaLogoutUri = () => `http://localhost:${port}/spa-logout`;

/** "web" asks for iss and sid (and keeps its own query); "spa", on another origin, for neither. */
function withFrontchannelLogout(yaml: string): string {
  const webLine = '    post_logout_redirect_uris: [http://localhost:4000/bye]\n';
  const spaLine = '    post_logout_redirect_uris: [http://localhost:4000/spa-bye]\n';
  if (!yaml.includes(webLine) || !yaml.includes(spaLine)) throw new Error('test clients changed: web or spa has no post_logout_redirect_uris line');
  return yaml
    .replace(webLine, `${webLine}    frontchannel_logout_uri: "${webLogoutUri()}"\n    frontchannel_logout_session_required: true\n`)
    .replace(spaLine, `${spaLine}    frontchannel_logout_uri: ${spaLogoutUri()}\n`);
}

beforeAll(async () => {
  apps = await startLogoutReceiver();
  port = apps.port;
  [nyckel, chromium] = await Promise.all([
    startTestNyckel({ clients: parseClientsFile(withFrontchannelLogout(testClientsYaml), 'test-clients.yaml') }),
    Chromium.launch(),
  ]);
  await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  const user = await nyckel.accounts.create({ email: accountPagesEmail, password: TEST_PASSWORD });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
});
afterEach(() => chromium?.closeContexts());
afterAll(async () => {
  await chromium?.close();
  await nyckel?.stop();
  await apps?.close();
});

/** Signs in to "web" (with consent) and then to "spa" in the same browser session. */
async function signInToBoth(as = email) {
  const { browser, web, webTokens } = await signInToWebAndSpa(nyckel.url, as);
  const webSid = decodeJwt(webTokens.id_token!).sid;
  // The app asked for iss and sid: its ID token names the session, as the frame's URL will.
  expect(typeof webSid).toBe('string');
  return { browser, web, webSid, webIdToken: webTokens.id_token! };
}

/** The frames' URLs, the continue link and the noscript refresh of the page after the sign-out. */
function framesPage(page: Page) {
  return {
    frames: [...page.html.matchAll(/<iframe\b[^>]*\bsrc="([^"]*)"/g)].map((m) => decodeEntities(m[1])),
    continueUrl: decodeEntities(/<a id="logout-continue" href="([^"]*)"/.exec(page.html)?.[1] ?? ''),
    refresh: decodeEntities(/<meta http-equiv="refresh" content="([^"]*)"/.exec(page.html)?.[1] ?? ''),
  };
}

function directives(page: Page): Map<string, string> {
  const csp = page.headers.get('content-security-policy') ?? '';
  return new Map(
    csp
      .split(';')
      .map((d) => d.trim().split(/\s+/))
      .map(([name, ...sources]) => [name, sources.join(' ')]),
  );
}

describe('front-channel logout', () => {
  test('discovery advertises front-channel logout with sessions', async () => {
    const discovery = (await (await fetch(`${nyckel.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.frontchannel_logout_supported).toBe(true);
    expect(discovery.frontchannel_logout_session_supported).toBe(true);
  });

  test('signing out at one app shows a frame per app of the session, then continues to the post_logout_redirect_uri', async () => {
    const { browser, web, webSid, webIdToken } = await signInToBoth();
    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken, post_logout_redirect_uri: 'http://localhost:4000/bye', state: 'st-1' });
    const confirm = await browser.go(logout.toString());
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });

    expect(done.status).toBe(200);
    expect(done.headers.get('location')).toBeNull();
    expect(done.headers.get('cache-control')).toBe('no-store');
    const { frames, continueUrl, refresh } = framesPage(done);
    expect(frames.sort()).toEqual([`${webLogoutUri()}&${new URLSearchParams({ iss: nyckel.url, sid: String(webSid) })}`, spaLogoutUri()].sort());
    expect(continueUrl).toBe('http://localhost:4000/bye?state=st-1');
    expect(refresh).toBe('3;url=http://localhost:4000/bye?state=st-1');
    expect(done.html).toContain('<script src="/assets/logout-frames.js" defer></script>');

    const csp = directives(done);
    expect(csp.get('frame-src')?.split(' ').sort()).toEqual([`http://127.0.0.1:${port}`, `http://localhost:${port}`].sort());
    expect(csp.get('script-src')).toBe("'self'");
    expect(csp.get('frame-ancestors')).toBe("'none'");

    // The session is over: the next authorization request asks for the password again.
    const again = await startAuthorization(web, { redirect_uri: 'http://localhost:4000/cb' });
    expect(new URL((await browser.go(again.url.toString())).url).pathname).toMatch(/^\/interaction\//);
    // Other pages keep the policy without frames.
    expect(directives(await browser.go(`${nyckel.url}/`)).has('frame-src')).toBe(false);
  });

  test('the confirmation posted with a trailing slash (oidc-provider answers it too) still loads the frames', async () => {
    const { browser, web, webIdToken } = await signInToBoth();
    const confirm = await browser.go(
      oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken, post_logout_redirect_uri: 'http://localhost:4000/bye' }).toString(),
    );
    const slashed = { ...confirm, html: confirm.html.replace(/action="([^"]*\/session\/end\/confirm)"/, 'action="$1/"') };
    const done = await browser.submit(slashed, /\/session\/end\/confirm\/$/, { logout: 'yes' });
    expect(done.status).toBe(200);
    expect(framesPage(done).frames).toHaveLength(2);
  });

  test('state is never markup on the frames page, and a post_logout_redirect_uri not registered is refused before any sign-out', async () => {
    const { browser, web, webIdToken } = await signInToBoth();
    const state = '"><script>alert(1)</script><meta http-equiv="refresh" content="0;url=https://evil.example">';
    const confirm = await browser.go(
      oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken, post_logout_redirect_uri: 'http://localhost:4000/bye', state }).toString(),
    );
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(done.html).not.toContain('<script>alert');
    expect(done.html).not.toContain('evil.example">');
    const { continueUrl, refresh } = framesPage(done);
    expect(new URL(continueUrl).searchParams.get('state')).toBe(state);
    expect(refresh).toBe(`3;url=${continueUrl}`);

    const other = await signInToBoth();
    const refused = await other.browser.go(
      oidc.buildEndSessionUrl(other.web, { id_token_hint: other.webIdToken, post_logout_redirect_uri: 'https://evil.example/bye' }).toString(),
    );
    expect(refused.status).toBe(400);
    expect(refused.headers.get('location')).toBeNull();
    expect(refused.html).not.toContain('/session/end/confirm');
    expect(refused.html).not.toContain('https://evil.example');
  });

  test('the "signed out" page follows when the app gave no post_logout_redirect_uri', async () => {
    const { browser, web, webIdToken } = await signInToBoth();
    const confirm = await browser.go(oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken }).toString());
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    const { frames, continueUrl } = framesPage(done);
    expect(frames).toHaveLength(2);
    expect(continueUrl).toBe(`${nyckel.url}/session/end/success`);
    const signedOut = await browser.go(continueUrl);
    expect(signedOut.html).toContain('You are signed out');
  });

  test('"stay signed in" loads only the asking app\'s frame', async () => {
    const { browser, web, webSid, webIdToken } = await signInToBoth();
    const logout = oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const done = await browser.submit(await browser.go(logout.toString()), /\/session\/end\/confirm$/, {});
    const { frames, continueUrl } = framesPage(done);
    expect(frames).toEqual([`${webLogoutUri()}&${new URLSearchParams({ iss: nyckel.url, sid: String(webSid) })}`]);
    expect(continueUrl).toBe('http://localhost:4000/bye');
    expect(directives(done).get('frame-src')).toBe(`http://127.0.0.1:${port}`);
  });

  test('"Sign out" on the account pages loads the apps\' frames too, then returns to the account pages', async () => {
    const { browser } = await signInToBoth(accountPagesEmail);
    const account = await browser.go(new URL('/account', nyckel.url).toString());
    expect(account.url).toBe(new URL('/account', nyckel.url).toString());
    const confirm = await browser.submit(account, '/account/logout', {});
    const done = await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    const { frames, continueUrl } = framesPage(done);
    expect(frames).toHaveLength(2);
    expect(new URL(continueUrl).pathname).toBe('/account/signed-out');
  });
});

describe('in a real browser', () => {
  test("Chromium loads each app's front-channel logout URL, then arrives at the post_logout_redirect_uri", async () => {
    const { browser, web, webSid, webIdToken } = await signInToBoth();
    const context = await chromium.newContext();
    // The scripted browser's Nyckel cookies (the session) move to Chromium.
    const cookies = await browser.jar.getCookies(nyckel.url);
    await context.addCookies(
      cookies.map((c) => ({ name: c.key, value: c.value, domain: 'localhost', path: c.path ?? '/', httpOnly: c.httpOnly, sameSite: 'Lax' as const })),
    );
    const page = await context.newPage();
    const rp = await interceptRelyingParty(page);
    const refused: string[] = [];
    page.on('console', (message) => {
      if (message.text().includes('Content Security Policy')) refused.push(message.text());
    });
    apps.received.length = 0;

    await page.goto(oidc.buildEndSessionUrl(web, { id_token_hint: webIdToken, post_logout_redirect_uri: 'http://localhost:4000/bye' }).toString());
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    const arrival = await rp.arrival();

    expect(arrival.toString()).toBe('http://localhost:4000/bye');
    const loaded = apps.received.map((request) => request.url).sort();
    expect(loaded).toEqual([`${webLogoutUri()}&${new URLSearchParams({ iss: nyckel.url, sid: String(webSid) })}`, spaLogoutUri()].sort());
    expect(refused).toEqual([]);
  });
});

describe('clients file', () => {
  const withWebUri = (uri: string, extra = '') =>
    testClientsYaml.replace(
      '    post_logout_redirect_uris: [http://localhost:4000/bye]\n',
      `    post_logout_redirect_uris: [http://localhost:4000/bye]\n    frontchannel_logout_uri: "${uri}"\n${extra}`,
    );

  test('a front-channel logout URI must be https, or http on localhost', () => {
    expect(() => parseClientsFile(withWebUri('http://rp.example.test/logout'), 'clients.yaml')).toThrow(/frontchannel_logout_uri.*must use https/s);
    expect(() => parseClientsFile(withWebUri('https://rp.example.test/logout?x=1'), 'clients.yaml')).not.toThrow();
  });

  test('it must not carry a fragment', () => {
    expect(() => parseClientsFile(withWebUri('https://rp.example.test/logout#top'), 'clients.yaml')).toThrow(/frontchannel_logout_uri.*fragment/s);
  });

  test('frontchannel_logout_session_required needs the URI', () => {
    const yaml = testClientsYaml.replace(
      '    post_logout_redirect_uris: [http://localhost:4000/bye]\n',
      '    post_logout_redirect_uris: [http://localhost:4000/bye]\n    frontchannel_logout_session_required: true\n',
    );
    expect(() => parseClientsFile(yaml, 'clients.yaml')).toThrow(/frontchannel_logout_session_required.*needs frontchannel_logout_uri/s);
  });
});
