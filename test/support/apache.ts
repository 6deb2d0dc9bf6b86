import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { FormBrowser, type Page } from './browser.ts';
import { freePort } from './process.ts';

/** Debian's Apache and mod_auth_openidc, where the packages put them. */
export const APACHE_BIN = '/usr/sbin/apache2';
export const APACHE_MODULES_DIR = '/usr/lib/apache2/modules';
export const APT_INSTALL = 'apt-get install apache2-bin libapache2-mod-auth-openidc (.ci/run does)';
const MODULES = {
  mpm_event_module: 'mod_mpm_event.so',
  authn_core_module: 'mod_authn_core.so',
  authz_core_module: 'mod_authz_core.so',
  authz_user_module: 'mod_authz_user.so',
  include_module: 'mod_include.so',
  auth_openidc_module: 'mod_auth_openidc.so',
};

/** What of Apache with mod_auth_openidc is not installed here (empty: everything is). */
export function missingApacheParts(): string[] {
  const files = [APACHE_BIN, ...Object.values(MODULES).map((file) => path.join(APACHE_MODULES_DIR, file))];
  return files.filter((file) => !fs.existsSync(file));
}

/** The pages: the claims mod_auth_openidc passes as environment variables, echoed by server-side includes. */
const CLAIMS_PAGE = `<!doctype html>
<title>Apache relying party</title>
<dl>
<dt>user</dt><dd id="user"><!--#echo var="REMOTE_USER" --></dd>
<dt>email</dt><dd id="email"><!--#echo var="OIDC_CLAIM_email" --></dd>
<dt>acr</dt><dd id="acr"><!--#echo var="OIDC_CLAIM_acr" --></dd>
<dt>amr</dt><dd id="amr"><!--#echo var="OIDC_CLAIM_amr" --></dd>
<dt>access token expires</dt><dd id="expires"><!--#echo var="OIDC_access_token_expires" --></dd>
</dl>
`;
const STATIC_PAGES = {
  'index.html': '<!doctype html><title>Home</title><h1 id="home">Apache home page</h1>\n',
  'signed-out.html': '<!doctype html><title>Signed out</title><h1 id="signed-out">You have signed out</h1>\n',
  'protected/index.shtml': CLAIMS_PAGE,
  'protected/mfa/index.shtml': CLAIMS_PAGE,
};

export interface ApacheRelyingPartyOptions {
  /** The origin Apache answers on, http://127.0.0.1:<port> (from `apacheOrigin`). */
  origin: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Where mod_auth_openidc sends the user when it cannot use the authorization response (absent: not set). */
  defaultUrl?: string;
  /** OIDCStateTimeout: how long a started sign-in may take (absent: the module's 300 seconds). */
  stateTimeoutSeconds?: number;
  /** OIDCRefreshAccessTokenBeforeExpiry with logout_on_error, and offline_access asked for (absent: no refresh). */
  refreshBeforeExpirySeconds?: number;
}

/** The mod_auth_openidc part of the configuration (docs/relying-parties-mod-auth-openidc.md shows the same). */
export function openidcDirectives(options: ApacheRelyingPartyOptions, cryptoPassphrase: string): string {
  return `OIDCProviderMetadataURL ${options.issuer}/.well-known/openid-configuration
OIDCClientID ${options.clientId}
OIDCClientSecret ${options.clientSecret}
OIDCRedirectURI ${options.origin}/protected/redirect_uri
OIDCCryptoPassphrase ${cryptoPassphrase}
OIDCPKCEMethod S256
OIDCScope "openid email profile${options.refreshBeforeExpirySeconds ? ' offline_access' : ''}"
OIDCRemoteUserClaim sub
OIDCPassClaimsAs environment
${options.defaultUrl ? `OIDCDefaultURL ${options.defaultUrl}\n` : ''}${options.stateTimeoutSeconds ? `OIDCStateTimeout ${options.stateTimeoutSeconds}\n` : ''}${
    options.refreshBeforeExpirySeconds ? `OIDCRefreshAccessTokenBeforeExpiry ${options.refreshBeforeExpirySeconds} logout_on_error\n` : ''
  }
<Location /protected>
  AuthType openid-connect
  Require valid-user
</Location>

# Step-up: this part needs a second factor. A session signed in with the password alone is sent back
# to Nyckel with acr_values, which asks for the second factor only.
<Location /protected/mfa>
  AuthType openid-connect
  OIDCPathAuthRequestParams acr_values=urn:nyckel:acr:mfa
  OIDCUnAutzAction auth
  Require claim acr:urn:nyckel:acr:mfa
</Location>
`;
}

function httpdConf(root: string, port: number, openidc: string): string {
  const loads = Object.entries(MODULES).map(([name, file]) => `LoadModule ${name} ${path.join(APACHE_MODULES_DIR, file)}`);
  // Started as root (CI), Apache's children drop to an unprivileged user.
  const user = process.getuid?.() === 0 ? 'User nobody\nGroup nogroup\n' : '';
  return `ServerRoot ${root}
ServerName 127.0.0.1:${port}
Listen 127.0.0.1:${port}
PidFile ${root}/httpd.pid
DefaultRuntimeDir ${root}
ErrorLog ${root}/error.log
LogLevel warn auth_openidc:info
${loads.join('\n')}
${user}StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16
MinSpareThreads 1
MaxSpareThreads 16
DocumentRoot ${root}/htdocs
<Directory ${root}/htdocs>
  Options +Includes
  Require all granted
</Directory>
<Files "*.shtml">
  ForceType text/html
  SetOutputFilter INCLUDES
</Files>

${openidc}`;
}

export interface RunningApache {
  origin: string;
  /** Apache's error log (mod_auth_openidc logs there), for a failing test's message. */
  errorLog(): string;
  stop(): Promise<void>;
}

/** A free port on loopback and the origin Apache will answer on, known before the clients file is written. */
export async function apacheOrigin(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

/**
 * Runs Apache ("$0" "$@") and ends it when its standard input closes: when `stop` closes it, and also
 * when the test process dies without an afterAll (jest's --forceExit, a kill), which closes the pipe.
 */
const WATCHDOG = 'exec 3<&0; "$0" "$@" </dev/null & apache=$!; (cat <&3 >/dev/null; kill -TERM $apache 2>/dev/null) & wait $apache';

/**
 * Apache in the foreground (under WATCHDOG) in its own process group, with a generated configuration in a temporary
 * directory; `stop` ends the group (the parent and its children) and removes the directory.
 */
export async function startApache(options: ApacheRelyingPartyOptions): Promise<RunningApache> {
  const missing = missingApacheParts();
  if (missing.length > 0) throw new Error(`Apache with mod_auth_openidc is not installed (missing ${missing.join(', ')}): ${APT_INSTALL}`);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-apache-'));
  fs.chmodSync(root, 0o755);
  for (const [file, text] of Object.entries(STATIC_PAGES)) {
    fs.mkdirSync(path.dirname(path.join(root, 'htdocs', file)), { recursive: true, mode: 0o755 });
    fs.writeFileSync(path.join(root, 'htdocs', file), text, { mode: 0o644 });
  }
  const port = Number(new URL(options.origin).port);
  const passphrase = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  fs.writeFileSync(path.join(root, 'httpd.conf'), httpdConf(root, port, openidcDirectives(options, passphrase)));

  const child = spawn('/bin/sh', ['-c', WATCHDOG, APACHE_BIN, '-f', path.join(root, 'httpd.conf'), '-DFOREGROUND'], {
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const errorLog = () => output + (fs.existsSync(path.join(root, 'error.log')) ? fs.readFileSync(path.join(root, 'error.log'), 'utf8') : '');
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // The group has already gone.
    }
  };
  const stop = async () => {
    child.stdin.end();
    if (child.exitCode === null && child.signalCode === null) {
      signalGroup('SIGTERM');
      const killed = setTimeout(() => signalGroup('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killed);
    }
    fs.rmSync(root, { recursive: true, force: true });
  };
  try {
    await answering(`${options.origin}/index.html`, () => child.exitCode !== null);
  } catch (error) {
    const log = errorLog();
    await stop();
    throw new Error(`Apache did not start: ${(error as Error).message}\n${log}`);
  }
  return { origin: options.origin, errorLog, stop };
}

async function answering(url: string, gone: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !gone()) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(gone() ? 'the process exited' : `no answer from ${url} in ${timeoutMs} ms`);
}

function plain(headers: Headers): Record<string, string> {
  const result: Record<string, string> = {};
  headers.forEach((value, name) => (result[name] = value));
  return result;
}

/**
 * The scripted browser, its requests sent as a browser's navigations (Accept: text/html, Sec-Fetch-Mode:
 * navigate, Sec-Fetch-Dest: document): mod_auth_openidc answers any other request to a protected page
 * (an XMLHttpRequest, a fetch) with 401 instead of sending the user to sign in. Node's fetch always
 * sends Sec-Fetch-Mode: cors, so this browser speaks plain HTTP/1.1 (every server here is on loopback).
 */
export class NavigatingBrowser extends FormBrowser {
  override async request(url: string, init: RequestInit = {}): Promise<Page> {
    if (init.body !== undefined && init.body !== null && typeof init.body !== 'string') throw new Error('NavigatingBrowser sends only string bodies');
    const headers = new Headers(init.headers);
    headers.set('accept', 'text/html,application/xhtml+xml');
    headers.set('sec-fetch-mode', 'navigate');
    headers.set('sec-fetch-dest', 'document');
    const cookies = await this.jar.getCookieString(url);
    if (cookies) headers.set('cookie', cookies);
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request(url, { method: init.method ?? 'GET', headers: plain(headers) }, resolve);
      request.once('error', reject);
      request.end(typeof init.body === 'string' ? init.body : undefined);
    });
    for (const cookie of response.headers['set-cookie'] ?? []) await this.jar.setCookie(cookie, url, { ignoreError: true });
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const answer = new Headers();
    for (const [name, value] of Object.entries(response.headers)) {
      for (const one of [value ?? []].flat()) answer.append(name, one);
    }
    return { status: response.statusCode!, url, html: Buffer.concat(chunks).toString('utf8'), headers: answer };
  }
}
