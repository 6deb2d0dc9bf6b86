import * as oidc from 'openid-client';
import { FormBrowser, type Page } from './browser.ts';

/** openid-client as the relying party, over plain http on loopback. */
export async function relyingParty(issuer: string, clientId: string, secret?: string, auth: 'basic' | 'post' | 'none' = secret ? 'basic' : 'none') {
  const clientAuth = auth === 'none' ? oidc.None() : auth === 'post' ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret);
  return oidc.discovery(new URL(issuer), clientId, secret ? { client_secret: secret } : undefined, clientAuth, {
    execute: [oidc.allowInsecureRequests],
  });
}

export interface AuthorizationStart {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

export async function startAuthorization(config: oidc.Configuration, params: Record<string, string>): Promise<AuthorizationStart> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...params,
  });
  return { url, verifier, state, nonce };
}

/** Signs in through the hosted pages with a scripted browser and returns the callback URL. */
export async function signInWithPassword(
  browser: FormBrowser,
  start: AuthorizationStart,
  credentials: { email: string; password: string },
  options: { consent?: boolean } = {},
): Promise<{ callback: URL; pages: Page[] }> {
  const pages: Page[] = [];
  let page = await browser.go(start.url.toString());
  pages.push(page);
  page = await browser.submit(page, '/login', credentials);
  pages.push(page);
  if (page.status === 200 && page.html.includes('/consent"')) {
    if (options.consent === false) throw new Error('consent page shown for a client that should skip it');
    page = await browser.submit(page, '/consent', { decision: 'allow' });
    pages.push(page);
  }
  if (page.status < 300 || page.status >= 400) throw new Error(`sign-in did not redirect back: ${page.status}\n${page.html.slice(0, 1500)}`);
  return { callback: new URL(page.url), pages };
}
