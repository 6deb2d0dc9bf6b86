import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { Accounts } from '../../src/accounts/accounts.ts';
import { AuditLog } from '../../src/accounts/audit.ts';
import { openDatabase, type Database } from '../../src/storage/db.ts';
import { newMasterKey } from '../../src/security/crypto.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { freshServerDatabase } from '../support/database.ts';
import { codeIn, latestMail, linkIn, registerMasterKey } from '../support/mail.ts';
import { freePort, startServerProcess, type RunningServer } from '../support/process.ts';
import { freshRedisPrefix, keysUnder, redisTestUrl } from '../support/redis.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { startSwitchProxy, type SwitchProxy } from '../support/switch-proxy.ts';

/**
 * Two Nyckel processes (`npm start`'s command) on one PostgreSQL database and one Redis, behind a
 * loopback balancer the test steers: each step of a sign-in can be sent to either node.
 */
const PASSWORD = 'correct horse battery staple';
const clientsYaml = `
clients:
  - client_id: portal
    name: Customer self-service
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/portal-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [email-code, email-link] }
`;

let dir: string;
let database: Awaited<ReturnType<typeof freshServerDatabase>>;
const redis = freshRedisPrefix();
let balancer: SwitchProxy;
const nodes: Record<'a' | 'b', { port: number; process: RunningServer }> = {} as never;
let db: Database;
let accounts: Accounts;
let users = 0;

function startNode(port: number, env: Record<string, string>) {
  return startServerProcess({ ...env, PORT: String(port) });
}

async function untilReady(node: { port: number; process: RunningServer }) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (node.process.child.exitCode !== null) throw new Error(`node exited:\n${node.process.output()}`);
    const ready = await fetch(`http://127.0.0.1:${node.port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`node not ready:\n${node.process.output()}`);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-cluster-'));
  fs.writeFileSync(path.join(dir, 'clients.yaml'), clientsYaml);
  database = await freshServerDatabase();
  const [portA, portB] = [await freePort(), await freePort()];
  balancer = await startSwitchProxy(portA);
  const masterKey = newMasterKey();
  const env = {
    NODE_ENV: 'development',
    HOST: '127.0.0.1',
    ISSUER: balancer.url,
    DATABASE_URL: database.url,
    REDIS_URL: redisTestUrl,
    NYCKEL_REDIS_PREFIX: redis.prefix,
    NYCKEL_MASTER_KEY: masterKey,
    NYCKEL_CLIENTS: path.join(dir, 'clients.yaml'),
    NYCKEL_DATA_DIR: dir,
    NYCKEL_DEMO: 'false',
    NYCKEL_LOG_LEVEL: 'warn',
    NYCKEL_ARGON2_MEMORY_KIB: '8192',
    NYCKEL_ARGON2_TIME_COST: '1',
    NYCKEL_CODE_RESEND_COOLDOWN: '0',
  };
  // Started together on an empty database: one migrates, the other waits for it (advisory lock).
  nodes.a = { port: portA, process: startNode(portA, env) };
  nodes.b = { port: portB, process: startNode(portB, env) };
  await Promise.all([untilReady(nodes.a), untilReady(nodes.b)]);
  db = await openDatabase({ kind: 'postgres', url: database.url });
  registerMasterKey(db.prisma, masterKey);
  accounts = new Accounts(db.prisma, new AuditLog(db.prisma), { memoryCost: 8192, timeCost: 1 });
}, 90_000);

afterAll(async () => {
  await Promise.all(Object.values(nodes).map((node) => node.process?.stop()));
  await balancer?.close();
  await db?.close();
  await database?.drop();
  await redis.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function newUser() {
  const email = `cluster${++users}@scb.example`;
  await accounts.create({ email, password: PASSWORD, locale: 'en' });
  return email;
}

/**
 * Authorization request, password and the method's code or waiting page, all on the node the balancer
 * points at. The email code (the primary) is sent at once after the password; the email link keeps its
 * start page, opened by its address.
 */
async function startSignIn(email: string, method: 'email-code' | 'email-link') {
  const config = await relyingParty(balancer.url, 'portal');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/portal-cb', scope: 'openid email' });
  // Stops where the second step begins (`…/mfa/<primary>?send=1`), before anything is sent.
  const browser = new FormBrowser((url) => url.port === '4000' || url.searchParams.get('send') === '1');
  let page = await browser.go(start.url.toString());
  page = await browser.submit(page, '/login', { email, password: PASSWORD });
  expect(page.url).toMatch(/\/mfa\/email-code\?send=1$/);
  if (method === 'email-code') {
    page = await browser.go(page.url);
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
  } else {
    page = await browser.go(page.url.replace(/\/mfa\/email-code\?send=1$/, `/mfa/${method}`));
    page = await browser.submit(page, '/start', { target: /value="([0-9a-f-]{36})"/.exec(page.html)![1] });
  }
  return { config, start, browser, page };
}

async function tokensFrom(config: oidc.Configuration, start: Awaited<ReturnType<typeof startAuthorization>>, page: Page) {
  expect(page.url).toContain('code=');
  return oidc.authorizationCodeGrant(config, new URL(page.url), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

const servedBy = (port: number) => balancer.served.get(port) ?? 0;

describe('two nodes, one PostgreSQL, one Redis', () => {
  test('a sign-in started on node A, its email code verified on node B, the token fetched from node A', async () => {
    const email = await newUser();
    balancer.to(nodes.a.port);
    const { config, start, browser, page: codePage } = await startSignIn(email, 'email-code');
    expect(textOf(codePage.html)).toContain('We sent a code to');

    balancer.to(nodes.b.port);
    const beforeB = servedBy(nodes.b.port);
    const callback = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(db.prisma, email)).text) });
    expect(servedBy(nodes.b.port)).toBeGreaterThan(beforeB);

    balancer.to(nodes.a.port);
    const tokens = await tokensFrom(config, start, callback);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'otp', 'mfa'] });
    // The sign-in in progress lived in Redis, not in the database.
    expect(await db.prisma.oidcModel.count({ where: { type: { in: ['Interaction', 'AuthorizationCode'] } } })).toBe(0);
    expect((await keysUnder(redis.prefix)).some((key) => key.startsWith('oidc:AuthorizationCode:'))).toBe(true);
  });

  test('the waiting page of an email link on node A hears at once that the link was opened on node B', async () => {
    const email = await newUser();
    balancer.to(nodes.a.port);
    const { config, start, browser, page: waiting } = await startSignIn(email, 'email-link');
    const statusPath = /data-status-url="([^"]+)"/.exec(waiting.html)![1];

    // The page's own question, held by node A for up to 20 s.
    const asked = Date.now();
    const answer = browser.request(`http://127.0.0.1:${nodes.a.port}${statusPath}?wait=20`, { headers: { accept: 'application/json' } });
    await new Promise((resolve) => setTimeout(resolve, 300));

    balancer.to(nodes.b.port);
    const landing = await browser.go(linkIn((await latestMail(db.prisma, email)).text));
    const confirmed = await browser.submit(landing, /\/link\//, {});
    expect(textOf(confirmed.html)).toContain('You are confirmed');

    expect(JSON.parse((await answer).html)).toEqual({ status: 'verified' });
    // Answered by the signal, not by the end of the 20 s wait.
    expect(Date.now() - asked).toBeLessThan(15_000);

    balancer.to(nodes.a.port);
    const done = await browser.submit(waiting, '/mfa/continue', {});
    expect((await tokensFrom(config, start, done)).claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa' });
  });

  test('node A is killed in the middle of a sign-in: the sign-in finishes on node B', async () => {
    const email = await newUser();
    balancer.to(nodes.a.port);
    const { config, start, browser, page: codePage } = await startSignIn(email, 'email-code');

    nodes.a.process.child.kill('SIGKILL');
    await nodes.a.process.exited();
    balancer.to(nodes.b.port);

    const callback = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(db.prisma, email)).text) });
    const tokens = await tokensFrom(config, start, callback);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa' });
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    expect(userinfo.email).toBe(email);
  });
});

describe('shutdown', () => {
  test('SIGTERM: a question held by the node is answered, new connections are refused, and the node exits 0', async () => {
    const email = await newUser();
    balancer.to(nodes.b.port);
    const { browser, page: waiting } = await startSignIn(email, 'email-link');
    const statusPath = /data-status-url="([^"]+)"/.exec(waiting.html)![1];
    const held = browser.request(`http://127.0.0.1:${nodes.b.port}${statusPath}?wait=20`, { headers: { accept: 'application/json' } });
    await new Promise((resolve) => setTimeout(resolve, 300));

    nodes.b.process.child.kill('SIGTERM');
    const answer = await held;
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.html)).toEqual({ status: 'pending' });
    expect(await nodes.b.process.exited()).toBe(0);
    await expect(fetch(`http://127.0.0.1:${nodes.b.port}/healthz`)).rejects.toThrow();
  });
});
