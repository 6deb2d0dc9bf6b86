import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { expect } from '@jest/globals';
import * as oidc from 'openid-client';
import { FormBrowser } from './browser.ts';
import { TEST_PASSWORD } from './nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from './relying-party.ts';

/** A request an app's logout endpoint received: its URL (as the Host header named it), path, content type and form body. */
export interface LogoutRequest {
  url: string;
  path: string;
  contentType: string | undefined;
  form: URLSearchParams;
}

/**
 * The apps' logout endpoints (back-channel posts, front-channel page loads) on one loopback server:
 * records every request; `answerStatus` is what it answers (200 unless a test makes it fail).
 */
export async function startLogoutReceiver() {
  const received: LogoutRequest[] = [];
  const state = { answerStatus: 200 };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ url: `http://${req.headers.host}${req.url}`, path: req.url!, contentType: req.headers['content-type'], form: new URLSearchParams(body) });
      res
        .writeHead(state.answerStatus, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
        .end('<!doctype html><title>Signed out</title>');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    received,
    state,
    port: (server.address() as AddressInfo).port,
    /** The logout tokens posted, with the path they were posted to. */
    tokens: () => received.map((r) => ({ path: r.path, contentType: r.contentType, token: r.form.get('logout_token') ?? '' })),
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Signs in to "web" (with consent) and then to "spa" in the same scripted browser session, without a
 * second password; returns the browser, web's configuration and both apps' tokens.
 */
export async function signInToWebAndSpa(issuer: string, email: string) {
  const browser = new FormBrowser((u) => u.port === '4000');
  const web = await relyingParty(issuer, 'web', 'web-secret-web-secret-0001');
  const webStart = await startAuthorization(web, { redirect_uri: 'http://localhost:4000/cb' });
  const { callback } = await signInWithPassword(browser, webStart, { email, password: TEST_PASSWORD });
  const webTokens = await oidc.authorizationCodeGrant(web, callback, {
    pkceCodeVerifier: webStart.verifier,
    expectedState: webStart.state,
    expectedNonce: webStart.nonce,
  });

  const spa = await relyingParty(issuer, 'spa');
  const spaStart = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb' });
  const spaCallback = await browser.go(spaStart.url.toString());
  expect(spaCallback.url).toMatch(/^http:\/\/localhost:4000\/spa-cb\?/);
  const spaTokens = await oidc.authorizationCodeGrant(spa, new URL(spaCallback.url), {
    pkceCodeVerifier: spaStart.verifier,
    expectedState: spaStart.state,
    expectedNonce: spaStart.nonce,
  });
  return { browser, web, webTokens, spaTokens };
}

/** A logger at level info whose JSON lines are kept: `entries()` parses them, `clear()` forgets them. */
export function capturedLogs() {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += chunk;
      done();
    },
  });
  return {
    logger: pino({ level: 'info' }, sink),
    entries: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { msg: string; clientId?: string }),
    clear: () => {
      text = '';
    },
  };
}
