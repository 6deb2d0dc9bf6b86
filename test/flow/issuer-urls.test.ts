import http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, findForm } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

/**
 * Issue 13, section 6: every URL Nyckel publishes is built from ISSUER only, never from the Host the
 * request names, X-Forwarded-Host behind a trusted proxy, or an absolute request target.
 */

let nyckel: TestNyckel;
let issuer: string;

beforeAll(async () => {
  nyckel = await startTestNyckel({ env: { NYCKEL_TRUST_PROXY: 'true' } });
  issuer = nyckel.settings.issuer;
});
afterAll(() => nyckel?.stop());

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with exactly these headers (fetch would not send another Host); `target` may be absolute-form. */
function raw(target: string, headers: Record<string, string> = {}): Promise<Answer> {
  const { port } = new URL(nyckel.url);
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path: target, method: 'GET', headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Every string in the document that is a URL. */
function urlsIn(document: unknown): string[] {
  if (typeof document === 'string') return /^[a-z][a-z0-9+.-]*:\/\//i.test(document) ? [document] : [];
  if (Array.isArray(document)) return document.flatMap(urlsIn);
  if (document && typeof document === 'object') return Object.values(document).flatMap(urlsIn);
  return [];
}

const forged = {
  'a forged Host': { host: 'evil.example' },
  'X-Forwarded-Host and -Proto from a trusted proxy': { host: 'localhost', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' },
  'an internal name': { host: 'nyckel-node-2.internal:8080' },
};

describe('discovery and JWKS name the issuer only', () => {
  test.each(Object.entries(forged))('discovery with %s', async (_name, headers) => {
    const answer = await raw('/.well-known/openid-configuration', headers);
    expect(answer.status).toBe(200);
    const discovery = JSON.parse(answer.body) as Record<string, unknown>;
    expect(discovery.issuer).toBe(issuer);
    const urls = urlsIn(discovery);
    expect(urls.length).toBeGreaterThan(8);
    for (const url of urls) expect(url === issuer || url.startsWith(`${issuer}/`)).toBe(true);
    expect(discovery).toMatchObject({
      authorization_endpoint: `${issuer}/auth`,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      end_session_endpoint: `${issuer}/session/end`,
    });
    expect(answer.body).not.toContain('evil');
    expect(answer.body).not.toContain('internal');
  });

  test('an absolute request target naming another host', async () => {
    const answer = await raw('http://evil.example/.well-known/openid-configuration', { host: 'evil.example' });
    expect(answer.status).toBe(200);
    expect((JSON.parse(answer.body) as Record<string, unknown>).token_endpoint).toBe(`${issuer}/token`);
    expect(answer.body).not.toContain('evil');
  });

  test('Cache-Control: discovery for five minutes; the JWKS revalidated every time (a rotated key signs at once), with an ETag', async () => {
    const discovery = await raw('/.well-known/openid-configuration', { host: 'evil.example' });
    expect(discovery.headers['cache-control']).toBe('public, max-age=300');
    const jwks = await raw('/jwks', { host: 'evil.example' });
    expect(jwks.status).toBe(200);
    expect(jwks.headers['cache-control']).toBe('public, no-cache');
    expect(jwks.headers.etag).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect((JSON.parse(jwks.body) as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    const unchanged = await raw('/jwks', { 'if-none-match': jwks.headers.etag! });
    expect(unchanged.status).toBe(304);
    expect(unchanged.body).toBe('');
    // Anything else of the provider keeps its own caching.
    const token = await raw('/token', {});
    expect(token.headers['cache-control']).not.toBe('public, max-age=300');
  });
});

describe('redirects and pages of the provider name the issuer only', () => {
  test('a sign-in begun through a proxy that says X-Forwarded-Host returns to the issuer', async () => {
    const email = `host${Date.now()}@scb.example`;
    await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
    const config = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', scope: 'openid email' });
    const browser = new FormBrowser();
    const viaProxy = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' };
    const authorize = await browser.request(start.url.toString(), { headers: viaProxy });
    expect(authorize.status).toBe(303);
    const interaction = await browser.go(new URL(authorize.headers.get('location')!, nyckel.url).toString());
    const form = findForm(interaction.html, '/login');
    const login = await browser.request(new URL(form.action, nyckel.url).toString(), {
      method: 'POST',
      headers: { ...viaProxy, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form.hidden, email, password: TEST_PASSWORD }).toString(),
    });
    expect(login.status).toBe(303);
    expect(login.headers.get('location')).toMatch(new RegExp(`^${issuer}/auth/`));
  });

  test('the logout confirmation posts to the issuer', async () => {
    const answer = await raw('/session/end', { host: 'evil.example' });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('<form');
    expect(answer.body).not.toContain('evil.example');
  });
});
