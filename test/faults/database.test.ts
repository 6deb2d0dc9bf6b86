import net from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pg from 'pg';
import * as oidc from 'openid-client';
import pino from 'pino';
import { Redis } from 'ioredis';
import { openDatabase } from '../../src/storage/db.ts';
import { isStorageUnavailable } from '../../src/storage/unavailable.ts';
import { FormBrowser, findForm, textOf, type Page } from '../support/browser.ts';
import { freshServerDatabase, postgresAdminUrl } from '../support/database.ts';
import { messages } from '../support/messages.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { redisTestUrl } from '../support/redis.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

/**
 * The PostgreSQL server going away under a running Nyckel (staged with a TCP relay in front of the
 * real server; always the server, whatever the jest project): while it is away every request that
 * needs it gets a clean 503 — a localised page, an OAuth error, JSON — never a 500 and never a hang;
 * once it is back the same process serves again, its pool reconnecting by itself.
 */
const email = 'outage@scb.example';
const machineAuth = `Basic ${Buffer.from('machine:machine-secret-machine-01').toString('base64')}`;
/** A request still unanswered after this long counts as hanging. */
const HANG_MS = 8_000;

let server: Awaited<ReturnType<typeof freshServerDatabase>>;
let relay: TcpProxy;
let nyckel: TestNyckel;
const logLines: Array<{ level: number; msg: string }> = [];
let authorizeUrl: string;
let adminToken: string;
let userId: string;

beforeAll(async () => {
  server = await freshServerDatabase();
  const admin = new URL(postgresAdminUrl);
  relay = await startTcpProxy({ host: admin.hostname, port: Number(admin.port || 5432) });
  const throughRelay = new URL(server.url);
  throughRelay.host = relay.address;
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _encoding, done) {
        logLines.push(JSON.parse(String(chunk)));
        done();
      },
    }),
  );
  nyckel = await startTestNyckel({ database: { target: { kind: 'postgres', url: throughRelay.toString() }, drop: server.drop }, logger });
  userId = (await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' })).id;
  const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
  adminToken = (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: `${nyckel.url}/admin` })).access_token;
  const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
  authorizeUrl = (await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email', ui_locales: 'sv' })).url.toString();
}, 30_000);

afterAll(async () => {
  await nyckel?.stop();
  await relay?.close();
});

/** A login page of an authorization request of its own (cookies in its browser). */
async function loginPage(): Promise<{ browser: FormBrowser; page: Page }> {
  const browser = new FormBrowser();
  const page = await browser.go(authorizeUrl);
  if (page.status !== 200 || !page.html.includes('/login"')) throw new Error(`no login page: ${page.status}`);
  return { browser, page };
}

/** 'success', 'unavailable', or the error's name. */
type Verdict = string;

function htmlVerdict(page: { status: number; html: string; headers: Headers }, successStatus: number, locale: 'sv' | 'da' | 'en'): Verdict {
  if (page.status === successStatus) return 'success';
  if (page.status !== 503) return `status ${page.status}: ${textOf(page.html).slice(0, 200)}`;
  if (!textOf(page.html).includes(messages(locale)('errors.temporarily_unavailable')))
    return `503 without the ${locale} message: ${textOf(page.html).slice(0, 200)}`;
  if (!page.headers.get('retry-after')) return '503 page without Retry-After';
  return 'unavailable';
}

async function jsonVerdict(response: Response, unavailable: (body: Record<string, unknown>) => boolean): Promise<Verdict> {
  const text = await response.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return `status ${response.status}, not JSON: ${text.slice(0, 200)}`;
  }
  if (response.status === 200) return 'success';
  if (response.status === 503 && unavailable(body)) return 'unavailable';
  return `status ${response.status}: ${JSON.stringify(body)}`;
}

/** One request of each kind; each says whether it succeeded, failed cleanly, or how it failed. */
function probes(
  shownLogin: { browser: FormBrowser; page: Page },
  passwordForms: Array<{ browser: FormBrowser; page: Page }>,
): Record<string, (signal: AbortSignal) => Promise<Verdict>> {
  return {
    token: async (signal) => {
      const response = await fetch(`${nyckel.url}/token`, {
        method: 'POST',
        signal,
        headers: { authorization: machineAuth, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'reports:read' }),
      });
      const retryAfter = response.headers.get('retry-after');
      const verdict = await jsonVerdict(response, (body) => body.error === 'temporarily_unavailable');
      return verdict === 'unavailable' && !retryAfter ? '503 token error without Retry-After' : verdict;
    },
    authorize: async (signal) => htmlVerdict(await new FormBrowser().request(authorizeUrl, { signal }), 303, 'sv'),
    loginPage: async (signal) => {
      const { browser, page } = shownLogin;
      return htmlVerdict(await browser.request(page.url, { signal, headers: { 'accept-language': 'da' } }), 200, 'da');
    },
    password: async (signal) => {
      const next = passwordForms.shift();
      if (!next) return 'skipped';
      const form = findForm(next.page.html, '/login');
      const answer = await next.browser.request(new URL(form.action, next.page.url).toString(), {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ ...form.hidden, email, password: TEST_PASSWORD }).toString(),
      });
      return htmlVerdict(answer, 303, 'en');
    },
    admin: async (signal) => {
      const response = await fetch(`${nyckel.url}/admin/v1/users/${userId}`, {
        signal,
        headers: { accept: 'application/json', authorization: `Bearer ${adminToken}` },
      });
      const retryAfter = response.headers.get('retry-after');
      const verdict = await jsonVerdict(response, (body) => body.error === 'temporarily_unavailable');
      return verdict === 'unavailable' && !retryAfter ? '503 admin error without Retry-After' : verdict;
    },
    readyz: async (signal) =>
      jsonVerdict(await fetch(`${nyckel.url}/readyz`, { signal }), (body) => body.status === 'unavailable' && body.database === 'unreachable'),
  };
}

interface Answer {
  kind: string;
  verdict: Verdict;
  /** Sent and answered while the relay was cut. */
  whollyDown: boolean;
  afterRestore: boolean;
}

describe('the PostgreSQL server goes away and comes back', () => {
  test('503s while it is away (pages in the user language, OAuth errors, JSON), never a 500 or a hang; the same process serves again after', async () => {
    const passwordForms = await Promise.all(Array.from({ length: 40 }, () => loginPage()));
    const run = probes(await loginPage(), passwordForms);
    const answers: Answer[] = [];
    let state: 'up' | 'down' | 'restored' = 'up';
    let stop = false;
    const workedBefore = new Set<string>();
    const recovered = new Set<string>();

    const loops = Object.entries(run).map(async ([kind, probe]) => {
      while (!stop) {
        const sentIn = state;
        let verdict: Verdict;
        try {
          verdict = await probe(AbortSignal.timeout(HANG_MS));
        } catch (error) {
          verdict = `no answer: ${(error as Error).name} ${(error as Error).message}`;
        }
        if (verdict === 'skipped') return;
        const whollyDown = sentIn === 'down' && state === 'down';
        const afterRestore = sentIn === 'restored';
        answers.push({ kind, verdict, whollyDown, afterRestore });
        if (verdict === 'success') (afterRestore ? recovered : workedBefore).add(kind);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    });

    const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const kinds = Object.keys(run).length;
    for (let waited = 0; workedBefore.size < kinds && waited < 15_000; waited += 100) await pause(100);
    state = 'down';
    relay.cut();
    await pause(3_000);
    relay.restore();
    state = 'restored';
    for (let waited = 0; recovered.size < kinds && waited < 15_000; waited += 100) await pause(100);
    stop = true;
    await Promise.all(loops);

    const bad = answers.filter((answer) => answer.verdict !== 'success' && answer.verdict !== 'unavailable');
    expect(bad).toEqual([]);
    // Before the cut everything worked; while the relay was cut nothing that needs the database did.
    expect([...workedBefore].sort()).toEqual(Object.keys(run).sort());
    for (const kind of Object.keys(run)) {
      const down = answers.filter((answer) => answer.kind === kind && answer.whollyDown);
      expect({ kind, down: down.length > 0 && down.every((answer) => answer.verdict === 'unavailable') }).toEqual({ kind, down: true });
    }
    // …and after the restore every kind succeeded again, in the same process.
    expect([...recovered].sort()).toEqual(Object.keys(run).sort());

    // Requests that met the outage were logged as warnings about the storage, not as unhandled errors.
    expect(logLines.filter((line) => line.msg === 'unhandled error')).toEqual([]);
    expect(logLines.some((line) => line.level === 40 && /storage unreachable/.test(line.msg))).toBe(true);
  }, 40_000);
});

describe('the server ends every session, as a restart does', () => {
  test('the pool replaces the ended connections: requests succeed again (or meet a clean 503 meanwhile)', async () => {
    const probe = probes(await loginPage(), [await loginPage()]);
    for (const kind of ['token', 'loginPage', 'readyz'])
      expect({ kind, verdict: await probe[kind](AbortSignal.timeout(HANG_MS)) }).toEqual({ kind, verdict: 'success' });
    const admin = new pg.Client({ connectionString: postgresAdminUrl });
    await admin.connect();
    try {
      const ended = await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [new URL(server.url).pathname.slice(1)]);
      expect(ended.rowCount).toBeGreaterThan(0);
    } finally {
      await admin.end();
    }
    for (const [kind, run] of Object.entries(probe)) {
      const verdicts: Verdict[] = [];
      for (let tries = 0; tries < 20 && verdicts.at(-1) !== 'success'; tries++) {
        if (tries) await new Promise((resolve) => setTimeout(resolve, 100));
        verdicts.push(await run(AbortSignal.timeout(HANG_MS)));
      }
      expect({ kind, verdicts: verdicts.filter((verdict) => verdict !== 'unavailable') }).toEqual({ kind, verdicts: ['success'] });
    }
  });
});

describe('isStorageUnavailable', () => {
  test('knows a dropped, refused or unanswered database connection and Redis being away, and nothing else', async () => {
    relay.cut();
    const dropped = await nyckel.db.prisma.user.findFirst().catch((error: unknown) => error);
    relay.restore();
    expect(isStorageUnavailable(dropped)).toBe(true);
    // Nothing listening (a server not started yet): Prisma's P1001.
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const nowhere = await openDatabase({ kind: 'postgres', url: `postgres://postgres@127.0.0.1:${closedPort}/nyckel` });
    const refused = await nowhere.prisma.user.findFirst().catch((error: unknown) => error);
    await nowhere.close();
    expect(refused).toMatchObject({ code: 'P1001' });
    expect(isStorageUnavailable(refused)).toBe(true);

    const duplicate = await nyckel.accounts.create({ email, password: TEST_PASSWORD }).catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(Error);
    expect(isStorageUnavailable(duplicate)).toBe(false);
    expect(isStorageUnavailable(await nyckel.db.prisma.$queryRawUnsafe('SELECT nonsense FROM nowhere').catch((error: unknown) => error))).toBe(false);
    expect(isStorageUnavailable(new Error('boom'))).toBe(false);
    expect(isStorageUnavailable(undefined)).toBe(false);

    // A server that takes the connection and never answers (a network black hole): the pool gives up
    // (connectionTimeoutMillis) instead of letting the request wait for ever.
    const held: net.Socket[] = [];
    const blackHole = net.createServer((socket) => void held.push(socket));
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    const silent = await openDatabase({ kind: 'postgres', url: `postgres://postgres@127.0.0.1:${(blackHole.address() as net.AddressInfo).port}/nyckel` });
    const unanswered = await silent.prisma.user.findFirst().catch((error: unknown) => error);
    await silent.close();
    for (const socket of held) socket.destroy();
    blackHole.close();
    expect(isStorageUnavailable(unanswered)).toBe(true);

    const redisUrl = new URL(redisTestUrl);
    const redisRelay = await startTcpProxy({ host: redisUrl.hostname, port: Number(redisUrl.port || 6379) });
    const withoutQueue = new Redis(`redis://${redisRelay.address}`, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    const queued = new Redis(`redis://${redisRelay.address}`, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 50 });
    for (const client of [withoutQueue, queued]) client.on('error', () => {});
    try {
      await Promise.all([withoutQueue.connect(), queued.connect()]);
      redisRelay.cut();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const notWritable = await withoutQueue.get('k').catch((error: unknown) => error);
      const retriesUsed = await queued.get('k').catch((error: unknown) => error);
      expect([isStorageUnavailable(notWritable), isStorageUnavailable(retriesUsed)]).toEqual([true, true]);
    } finally {
      withoutQueue.disconnect();
      queued.disconnect();
      await redisRelay.close();
    }
  }, 20_000);
});
