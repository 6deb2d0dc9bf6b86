import crypto from 'node:crypto';

/** Every request the benchmark makes gives up after this long, so no loop can hang on a socket. */
export const REQUEST_TIMEOUT_MS = 10_000;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Refuses anything but a loopback http URL, and pins `localhost` to 127.0.0.1 (the servers bind there). */
export function loopbackUrl(url: string | URL): URL {
  const parsed = new URL(url);
  if (!LOOPBACK.has(parsed.hostname)) throw new Error(`refusing a non-loopback address: ${parsed.href}`);
  if (parsed.hostname === 'localhost') parsed.hostname = '127.0.0.1';
  return parsed;
}

export function basicAuth(clientId: string, secret: string): string {
  // RFC 6749 2.3.1: form-urlencode both parts before base64.
  const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(clientId)}:${encode(secret)}`).toString('base64')}`;
}

export interface TokenRequest {
  tokenEndpoint: URL;
  clientId: string;
  secret: string;
  scope: string;
  resource: string;
}

/** One client_credentials grant; throws unless a JWT access token comes back. */
export function clientCredentials(request: TokenRequest): () => Promise<void> {
  const authorization = basicAuth(request.clientId, request.secret);
  const body = new URLSearchParams({ grant_type: 'client_credentials', scope: request.scope, resource: request.resource }).toString();
  return async () => {
    const response = await fetch(request.tokenEndpoint, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const json = (await response.json()) as { access_token?: string; error?: string; error_description?: string };
    if (response.status !== 200 || typeof json.access_token !== 'string' || json.access_token.split('.').length !== 3) {
      throw new Error(`client_credentials: HTTP ${response.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim());
    }
  };
}

interface StoredCookie {
  value: string;
  path: string;
}

/**
 * A minimal cookie jar for one origin: name + path, no domain matching (everything is one loopback
 * host), removal on Max-Age=0 or a past Expires. Enough for oidc-provider's and Nyckel's cookies.
 */
export class CookieJar {
  private readonly cookies = new Map<string, StoredCookie>();

  store(headers: Headers) {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attribute of attributes) {
        const [rawKey, ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const attributeValue = rest.join('=').trim();
        if (key === 'path' && attributeValue.startsWith('/')) path = attributeValue;
        else if (key === 'max-age' && Number(attributeValue) <= 0) expired = true;
        else if (key === 'expires' && Date.parse(attributeValue) <= Date.now()) expired = true;
      }
      const key = `${name}\u0000${path}`;
      if (expired) this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  }

  header(url: URL): string | undefined {
    const pairs: string[] = [];
    for (const [key, cookie] of this.cookies) {
      const matches =
        url.pathname === cookie.path || (url.pathname.startsWith(cookie.path) && (cookie.path.endsWith('/') || url.pathname[cookie.path.length] === '/'));
      if (matches) pairs.push(`${key.slice(0, key.indexOf('\u0000'))}=${cookie.value}`);
    }
    return pairs.length ? pairs.join('; ') : undefined;
  }
}

interface Hop {
  status: number;
  url: URL;
  location?: URL;
  html: string;
}

/** A browser with its own cookie jar that follows redirects by hand until `stopAt` matches. */
export class Browser {
  readonly jar = new CookieJar();

  constructor(private readonly stopAt: (url: URL) => boolean) {}

  async request(url: URL, init: { method?: string; body?: string } = {}): Promise<Hop> {
    const headers: Record<string, string> = { accept: 'text/html', 'accept-language': 'en' };
    const cookie = this.jar.header(url);
    if (cookie) headers.cookie = cookie;
    if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const response = await fetch(url, {
      method: init.method ?? 'GET',
      headers,
      body: init.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    this.jar.store(response.headers);
    const html = await response.text();
    const location = response.headers.get('location');
    return { status: response.status, url, html, location: location ? new URL(location, url) : undefined };
  }

  /** Follows redirects (at most 10 hops); returns the final page, or the redirect `stopAt` matched. */
  async go(url: URL, init: { method?: string; body?: string } = {}): Promise<Hop> {
    let hop = await this.request(url, init);
    for (let hops = 0; hop.status >= 300 && hop.status < 400 && hop.location; hops++) {
      if (this.stopAt(hop.location)) return hop;
      if (hops >= 10) throw new Error(`too many redirects from ${url.pathname}`);
      hop = await this.request(loopbackUrl(hop.location));
    }
    return hop;
  }
}

function hiddenInputs(form: string): Record<string, string> {
  const hidden: Record<string, string> = {};
  for (const input of form.matchAll(/<input\b[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
    if (name)
      hidden[name] = value
        .replace(/&quot;/g, '"')
        .replace(/&#39;/g, "'")
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&');
  }
  return hidden;
}

function formWithAction(html: string, suffix: string): { action: string; hidden: Record<string, string> } {
  for (const match of html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)) {
    const action = /action="([^"]*)"/.exec(match[0])?.[1];
    if (action?.endsWith(suffix)) return { action: action.replace(/&amp;/g, '&'), hidden: hiddenInputs(match[0]) };
  }
  throw new Error(`no form ending in ${suffix} on the page: ${html.slice(0, 300).replace(/\s+/g, ' ')}`);
}

export interface LoginUser {
  email: string;
  password: string;
  /** The code of the user's authenticator app, asked for when the sign-in shows a code form after the password. */
  otp?: () => Promise<string>;
}

export interface LoginFlow {
  base: URL;
  clientId: string;
  secret: string;
  redirectUri: string;
  /** Signed in one after the other, or the user of each new sign-in. */
  users: LoginUser[] | (() => LoginUser);
}

/**
 * One complete password sign-in as a new browser: authorize with PKCE → login form → the one-time
 * code form when the client requires a second factor → consent (or the first-party skip) → back at
 * the redirect URI with a code → code exchanged at the token endpoint.
 */
export function passwordLogin(flow: LoginFlow): (worker: number) => Promise<void> {
  const redirect = new URL(flow.redirectUri);
  const stopAt = (url: URL) => url.origin === redirect.origin && url.pathname === redirect.pathname;
  const authorization = basicAuth(flow.clientId, flow.secret);
  const tokenEndpoint = new URL('/token', flow.base);
  const users = flow.users;
  let next = 0;
  const nextUser = typeof users === 'function' ? users : () => users[next++ % users.length];
  return async () => {
    const user = nextUser();
    const browser = new Browser(stopAt);
    const verifier = crypto.randomBytes(32).toString('base64url');
    const state = crypto.randomBytes(16).toString('base64url');
    const authorize = new URL('/auth', flow.base);
    authorize.search = new URLSearchParams({
      client_id: flow.clientId,
      redirect_uri: flow.redirectUri,
      response_type: 'code',
      scope: 'openid',
      state,
      nonce: crypto.randomBytes(16).toString('base64url'),
      code_challenge: crypto.createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();

    let page = await browser.go(authorize);
    if (page.status !== 200) throw new Error(`authorize: expected the login page, got HTTP ${page.status}`);
    const login = formWithAction(page.html, '/login');
    page = await browser.go(loopbackUrl(new URL(login.action, page.url)), {
      method: 'POST',
      body: new URLSearchParams({ ...login.hidden, email: user.email, password: user.password }).toString(),
    });
    if (page.status === 200 && /<form\b[^>]*action="[^"]*\/mfa\/[^"]*\/verify"/.test(page.html)) {
      if (!user.otp) throw new Error(`the sign-in asks for a one-time code after the password, but ${user.email} has no authenticator app`);
      const challenge = formWithAction(page.html, '/verify');
      page = await browser.go(loopbackUrl(new URL(challenge.action, page.url)), {
        method: 'POST',
        body: new URLSearchParams({ ...challenge.hidden, code: await user.otp() }).toString(),
      });
    }
    if (page.status === 200 && page.html.includes('/consent"')) {
      const consent = formWithAction(page.html, '/consent');
      page = await browser.go(loopbackUrl(new URL(consent.action, page.url)), {
        method: 'POST',
        body: new URLSearchParams({ ...consent.hidden, decision: 'allow' }).toString(),
      });
    }
    const callback = page.location;
    if (!callback || !stopAt(callback)) throw new Error(`sign-in did not come back to the client: HTTP ${page.status} ${page.html.slice(0, 200)}`);
    const code = callback.searchParams.get('code');
    if (!code || callback.searchParams.get('state') !== state) {
      throw new Error(`callback without a code or with the wrong state: ${callback.search.slice(0, 200)}`);
    }

    const response = await fetch(tokenEndpoint, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: flow.redirectUri, code_verifier: verifier }).toString(),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const tokens = (await response.json()) as { id_token?: string; access_token?: string; error?: string; error_description?: string };
    if (response.status !== 200 || !tokens.id_token || !tokens.access_token) {
      throw new Error(`code exchange: HTTP ${response.status} ${tokens.error ?? ''} ${tokens.error_description ?? ''}`.trim());
    }
  };
}
