import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, textOf } from '../support/browser.ts';
import { freePort, projectRoot, startServerProcess, type RunningServer } from '../support/process.ts';

let dataDir: string;
let clientsFile: string;
let port: number;
let server: RunningServer;
let issuer: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-start-'));
  clientsFile = path.join(dataDir, 'clients.yaml');
  fs.copyFileSync(path.join(projectRoot, 'config/clients.yaml'), clientsFile);
  port = await freePort();
  issuer = `http://localhost:${port}`;
  server = startServerProcess({
    PORT: String(port),
    ISSUER: issuer,
    NYCKEL_DATA_DIR: dataDir,
    NYCKEL_CLIENTS: clientsFile,
    NYCKEL_LOG_LEVEL: 'info',
  });
});
afterAll(async () => {
  await server?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start on a fresh machine', () => {
  let password: string;
  const browser = new FormBrowser();

  test('starts on the embedded database and prints the demo client and user', async () => {
    const [, printed] = await server.waitFor(/demo user: demo@nyckel\.example {2}password: (\S+)/);
    password = printed;
    expect(server.output()).toContain(`Nyckel is running at ${issuer}`);
    expect(server.output()).toContain('client_id "demo"');
    expect(fs.existsSync(path.join(dataDir, 'pgdata'))).toBe(true);
    expect(fs.statSync(path.join(dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(discovery.issuer).toBe(issuer);
    expect(discovery.jwks_uri).toBe(`${issuer}/jwks`);
    expect(discovery.code_challenge_methods_supported).toEqual(['S256']);
    expect(discovery.response_types_supported).toEqual(['code']);
    expect(discovery.authorization_response_iss_parameter_supported).toBe(true);
    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: Array<{ alg: string; d?: string }> };
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256']);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  test('the demo app signs the demo user in and out', async () => {
    let page = await browser.go(`${issuer}/demo/login`);
    expect(page.html).toContain('Nyckel demo app');
    page = await browser.submit(page, '/login', { email: 'demo@nyckel.example', password });
    expect(page.status).toBe(200);
    expect(textOf(page.html)).toContain('You are signed in');
    expect(page.html).toContain('demo@nyckel.example');
    page = await browser.go(`${issuer}/demo/logout`);
    page = await browser.submit(page, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(textOf(page.html)).toContain('Sign in with Nyckel');
  });

  test('SIGHUP reloads the clients file without dropping sessions; a broken file is refused', async () => {
    // Sign in (a session cookie in this browser), then add a client and reload.
    let page = await browser.go(`${issuer}/demo/login`);
    page = await browser.submit(page, '/login', { email: 'demo@nyckel.example', password });
    expect(textOf(page.html)).toContain('You are signed in');

    const yaml = fs.readFileSync(clientsFile, 'utf8').replace(
      'resources: []',
      `  - client_id: added-later
    name: Added later
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/cb]
resources: []`,
    );
    fs.writeFileSync(clientsFile, yaml);
    const marker = server.output().length;
    server.child.kill('SIGHUP');
    await server.waitFor(/clients file and signing keys reloaded/);
    expect(server.output().slice(marker)).toContain('reloaded');

    const authorize = new URL(`${issuer}/auth`);
    Object.entries({
      client_id: 'added-later',
      response_type: 'code',
      scope: 'openid',
      redirect_uri: 'http://localhost:4000/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM',
      code_challenge_method: 'S256',
    }).forEach(([k, v]) => authorize.searchParams.set(k, v));
    const stopping = new FormBrowser((url) => url.port === '4000');
    for (const cookie of await browser.jar.getCookies(issuer)) await stopping.jar.setCookie(cookie, issuer);
    const result = await stopping.go(authorize.toString());
    // Still signed in: no password page, straight back with a code.
    expect(new URL(result.url).searchParams.get('code')).toBeTruthy();

    fs.writeFileSync(clientsFile, 'clients:\n  - client_id: broken\n');
    const before = server.output().length;
    server.child.kill('SIGHUP');
    await server.waitFor(/reload refused/);
    expect(server.output().slice(before)).toContain('clients[0] (client_id \\"broken\\").name');
    // The previous configuration is still in force.
    expect((await stopping.go(authorize.toString())).url).toContain('code=');
  });
});

describe('start-up refuses bad configuration with a clear message', () => {
  test('an invalid clients file stops start-up naming the file, the client and the field', async () => {
    const bad = path.join(dataDir, 'bad-clients.yaml');
    fs.writeFileSync(bad, 'clients:\n  - client_id: portal\n    name: Portal\n    redirect_uris: [ftp://x]\n');
    const child = startServerProcess({ PORT: String(await freePort()), NYCKEL_DATA_DIR: path.join(dataDir, 'other'), NYCKEL_CLIENTS: bad });
    expect(await child.exited()).toBe(1);
    expect(child.output()).toContain('bad-clients.yaml');
    expect(child.output()).toContain('clients[0] (client_id "portal").redirect_uris[0]');
    expect(child.output()).not.toMatch(/\n\s+at /);
  });

  test('an invalid setting stops start-up naming the variable', async () => {
    const child = startServerProcess({ PORT: 'eighty', NYCKEL_DATA_DIR: path.join(dataDir, 'other2') });
    expect(await child.exited()).toBe(1);
    expect(child.output()).toContain('PORT');
    expect(child.output()).toContain('Invalid configuration in the environment');
  });
});
