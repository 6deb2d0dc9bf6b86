// Issue 13 §4: a read-only copy of the database or of Redis (a leak, a backup) must hand out no live
// token, code, session or link, and neither may the logs; everything keeps working.
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import PostalMime from 'postal-mime';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';
import type { AdapterPayload } from 'oidc-provider';
import { createLogger } from '../../src/logger.ts';
import { OidcAtRest } from '../../src/storage/oidc-at-rest.ts';
import { sealLegacySecrets } from '../../src/keys/legacy-secrets.ts';
import { FormBrowser, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail, linkIn } from '../support/mail.ts';
import { waitFor } from '../delivery/helpers.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { dumpUnder } from '../support/redis.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';

let nyckel: TestNyckel;
let logs = '';
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

beforeAll(async () => {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs += chunk;
      done();
    },
  });
  // The production logger (its redaction included), at the most talkative level.
  nyckel = await startTestNyckel({ logger: createLogger('trace', sink), env: { NYCKEL_CODE_RESEND_COOLDOWN: '0' } });
});
afterAll(() => nyckel?.stop());

async function newUser(options: { verifiedEmail?: boolean } = {}) {
  const email = `rest${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  if (options.verifiedEmail === false) await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

/** Everything oidc-provider keeps: every column of oidc_models, and every Redis key and value. */
async function storedText(): Promise<string> {
  const rows = await nyckel.db.prisma.$queryRaw<Array<{ row: string }>>`SELECT row_to_json(m)::text AS row FROM oidc_models m`;
  return [...rows.map((r) => r.row), nyckel.redis ? await dumpUnder(nyckel.redis.prefix) : ''].join('\n');
}

async function deliveriesText(): Promise<string> {
  const rows = await nyckel.db.prisma.$queryRaw<Array<{ row: string }>>`SELECT row_to_json(d)::text AS row FROM deliveries d`;
  return rows.map((r) => r.row).join('\n');
}

/** Which of the named secrets occur in `text` (expected: none). */
function found(text: string, secrets: Record<string, string>): string[] {
  return Object.entries(secrets)
    .filter(([, secret]) => text.includes(secret))
    .map(([name]) => name);
}

const sessionCookie = (browser: FormBrowser) => browser.jar.getCookiesSync(nyckel.url).find((c) => c.key === 'nyckel.session')!.value;

async function tokensFrom(config: oidc.Configuration, start: AuthorizationStart, callback: string) {
  return oidc.authorizationCodeGrant(config, new URL(callback), { pkceCodeVerifier: start.verifier, expectedState: start.state, expectedNonce: start.nonce });
}

describe('oidc-provider models at rest', () => {
  test('ids of codes, tokens, sessions, interactions and pushed requests are stored only hashed or sealed, and all keep working', async () => {
    const { email } = await newUser();
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    const browser = new FormBrowser(callbackStop);
    const verifier = oidc.randomPKCECodeVerifier();
    const start: AuthorizationStart = { url: new URL(nyckel.url), verifier, state: oidc.randomState(), nonce: oidc.randomNonce() };
    start.url = await oidc.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: 'http://localhost:4000/cb',
      scope: 'openid email offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state: start.state,
      nonce: start.nonce,
    });
    const parId = start.url.searchParams.get('request_uri')!.replace('urn:ietf:params:oauth:request_uri:', '');
    let page = await browser.go(start.url.toString());
    const interaction = /\/interaction\/([^/?#]+)/.exec(page.url)![1];
    const during = await storedText();
    expect(during).toContain('Interaction');
    expect(found(during, { parId, interaction })).toEqual([]);

    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    page = await browser.submit(page, '/consent', { decision: 'allow' });
    const code = new URL(page.url).searchParams.get('code')!;
    const tokens = await tokensFrom(config, start, page.url);
    const secrets = { code, accessToken: tokens.access_token, refreshToken: tokens.refresh_token!, session: sessionCookie(browser), parId };
    const after = await storedText();
    expect(after).toContain('RefreshToken');
    expect(after).toContain('"type":"Session"');
    expect(found(after, secrets)).toEqual([]);

    // Everything still works: userinfo, introspection, refresh, a session-bound token, revocation, logout.
    const sub = tokens.claims()!.sub;
    expect(await oidc.fetchUserInfo(config, tokens.access_token, sub)).toMatchObject({ sub, email });
    expect(await oidc.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, sub });
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(await oidc.fetchUserInfo(config, refreshed.access_token, sub)).toMatchObject({ sub });
    // Without offline_access the token lives with the session: oidc-provider finds the session by its uid.
    const again = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email' });
    const bound = await tokensFrom(config, again, (await browser.go(again.url.toString())).url);
    expect(await oidc.fetchUserInfo(config, bound.access_token, sub)).toMatchObject({ sub });
    expect(
      found(await storedText(), {
        bound: bound.access_token,
        refreshed: refreshed.access_token,
        refreshedRefresh: refreshed.refresh_token ?? secrets.refreshToken,
      }),
    ).toEqual([]);

    const current = refreshed.refresh_token ?? tokens.refresh_token!;
    await oidc.tokenRevocation(config, current);
    await expect(oidc.refreshTokenGrant(config, current)).rejects.toMatchObject({ error: 'invalid_grant' });

    const logout = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://localhost:4000/bye' });
    const confirm = await browser.go(logout.toString());
    await browser.submit(confirm, /\/session\/end\/confirm$/, { logout: 'yes' });
    expect(await nyckel.db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: sub } } })).toBe(0);
    await expect(oidc.fetchUserInfo(config, bound.access_token, sub)).rejects.toBeTruthy();
  });

  test('a client_credentials token is stored hashed and still introspects', async () => {
    const config = await relyingParty(nyckel.url, 'machine', 'machine-secret-machine-01');
    const { access_token } = await oidc.clientCredentialsGrant(config, {});
    const stored = await storedText();
    expect(stored).toContain('ClientCredentials');
    expect(found(stored, { access_token })).toEqual([]);
    expect(await oidc.tokenIntrospection(config, access_token)).toMatchObject({ active: true, client_id: 'machine' });
  });

  test('the account pages list the sessions and end the others, keeping their own', async () => {
    const { email, user } = await newUser({ verifiedEmail: false });
    const signIn = async () => {
      const browser = new FormBrowser(callbackStop);
      const page = await browser.go(new URL('/account', nyckel.url).toString());
      return { browser, page: await browser.submit(page, '/login', { email, password: TEST_PASSWORD }) };
    };
    const others = [await signIn(), await signIn()];
    const { browser } = await signIn();
    const sessions = () => nyckel.db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: user.id } } });
    expect(await sessions()).toBe(3);
    const overview = await browser.go(new URL('/account', nyckel.url).toString());
    // This session (no button) and the two others.
    expect([...overview.html.matchAll(/action="\/account\/sessions\/[A-Za-z0-9_-]+\/end"/g)]).toHaveLength(2);
    const done = await browser.submit(overview, '/account/sessions/end-others', {});
    expect(textOf(done.html)).toContain('You are signed out everywhere else');
    expect(await sessions()).toBe(1);
    for (const other of others) expect((await other.browser.request(new URL('/account', nyckel.url).toString())).status).toBe(303);
    expect((await browser.request(new URL('/account', nyckel.url).toString())).status).toBe(200);
  });
});

describe('mail and logs', () => {
  async function secondFactorPage(clientId: string, email: string) {
    const config = await relyingParty(nyckel.url, clientId);
    const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${clientId}-cb`, scope: 'openid email' });
    const browser = new FormBrowser(callbackStop);
    const page = await browser.submit(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
    return { config, start, browser, page };
  }

  test('codes and link tokens are not in the deliveries table in clear, and no secret reaches the log', async () => {
    const { email } = await newUser();
    // An email code (the code mail's subject names it).
    const byCode = await secondFactorPage('selfservice', email);
    // The primary method starts at once: the code page, its code mailed.
    let page: Page = byCode.page;
    expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);
    const code = codeIn((await latestMail(nyckel.db.prisma, email)).text);
    page = await byCode.browser.submit(page, '/verify', { code: code === '000000' ? '111111' : '000000' });
    expect(page.status).toBe(401);
    page = await byCode.browser.submit(page, '/verify', { code });
    const codeTokens = await tokensFrom(byCode.config, byCode.start, page.url);

    // An email link, opened and confirmed.
    const byLink = await secondFactorPage('idep', email);
    const waiting = await byLink.browser.submit(byLink.page, '/start', { target: /value="([0-9a-f-]{36})"/.exec(byLink.page.html)![1] });
    const linkMail = await latestMail(nyckel.db.prisma, email);
    const link = linkIn(linkMail.text);
    const linkToken = link.split('/').pop()!;
    const landing = await byLink.browser.go(link);
    await byLink.browser.submit(landing, /\/link\//, {});
    const linkTokens = await tokensFrom(byLink.config, byLink.start, (await byLink.browser.submit(waiting, '/mfa/continue', {})).url);

    const mailSecrets = { code, linkToken, linkMailCode: codeIn(linkMail.text) };
    const rows = await deliveriesText();
    expect(rows).toContain(email);
    expect(found(rows, mailSecrets)).toEqual([]);

    expect(logs).toContain('"audit":"factor.verified"');
    expect(logs).toContain('"msg":"mail sent"');
    const tokenSecrets = {
      codeAccess: codeTokens.access_token,
      codeId: codeTokens.id_token!,
      linkAccess: linkTokens.access_token,
      session: sessionCookie(byLink.browser),
      password: TEST_PASSWORD,
    };
    expect(found(logs, { ...mailSecrets, ...tokenSecrets })).toEqual([]);
  });
});

/**
 * A real SMTP server on loopback that refuses the first message the way some spam filters do, by
 * quoting the offending line (here: the one with the code) in its answer.
 */
async function startQuotingSmtpServer() {
  const received: string[] = [];
  let refuseNext = true;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream: SMTPServerDataStream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        void PostalMime.parse(Buffer.concat(chunks)).then(({ text = '' }) => {
          if (!refuseNext) return void (received.push(text), callback());
          refuseNext = false;
          const quoted = text.split('\n').find((line) => /\d{6}/.test(line)) ?? '';
          callback(Object.assign(new Error(`Message refused as spam: "${quoted.trim()}"`), { responseCode: 550 }));
        });
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = (server as unknown as { server: { address(): AddressInfo } }).server.address();
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('mail sent through SMTP', () => {
  test("a sent mail's row keeps no body; a refusal quoting the code is neither kept nor logged", async () => {
    const smtp = await startQuotingSmtpServer();
    let mailLogs = '';
    const sink = new Writable({
      write(chunk, _encoding, done) {
        mailLogs += chunk;
        done();
      },
    });
    const mailer = await startTestNyckel({
      logger: createLogger('trace', sink),
      env: { NYCKEL_MAIL_TRANSPORT: 'smtp', NYCKEL_SMTP_URL: `smtp://127.0.0.1:${smtp.port}` },
    });
    try {
      const email = 'smtp.user@example.test';
      await mailer.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
      const config = await relyingParty(mailer.url, 'selfservice');
      const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid email' });
      const browser = new FormBrowser(callbackStop);
      let page = await browser.submit(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
      // The primary method starts at once: the code page, the code's mail queued.
      expect(new URL(page.url).pathname).toMatch(/\/mfa\/email-code\/challenge\/[0-9a-f-]{36}$/);

      const refused = await waitFor(
        async () => (await mailer.db.prisma.delivery.findFirst({ where: { recipient: email, lastError: { not: null } } })) ?? undefined,
        'the refusal',
      );
      expect(refused.lastError).toContain('Message refused as spam');
      await mailer.db.prisma.delivery.update({ where: { id: refused.id }, data: { nextAttempt: new Date() } });
      await mailer.mail.dispatcher.deliverDue();
      expect(smtp.received).toHaveLength(1);
      const code = codeIn(smtp.received[0]);

      const row = await mailer.db.prisma.delivery.findUniqueOrThrow({ where: { id: refused.id } });
      expect(row).toMatchObject({ status: 'sent', body: null, subject: null, text: null, html: null });
      const rows = await mailer.db.prisma.$queryRaw<Array<{ row: string }>>`SELECT row_to_json(d)::text AS row FROM deliveries d`;
      expect(rows.map((r) => r.row).join('\n')).not.toContain(code);
      expect(mailLogs).toContain('mail send failed; will retry');
      expect(mailLogs).not.toContain(code);
      // And the code, which only the mail held, signs in.
      page = await browser.submit(page, '/verify', { code });
      expect(page.url).toContain('code=');
    } finally {
      await mailer.stop();
      await smtp.close();
    }
  });
});

describe('an upgrade from a version that kept ids in clear', () => {
  test('rows written in the old form are re-keyed and sealed: the session and the refresh token keep working', async () => {
    const { email } = await newUser();
    const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
    const browser = new FormBrowser(callbackStop);
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid offline_access', prompt: 'consent' });
    let page = await browser.submit(await browser.go(start.url.toString()), '/login', { email, password: TEST_PASSWORD });
    page = await browser.submit(page, '/consent', { decision: 'allow' });
    const tokens = await tokensFrom(config, start, page.url);

    // Rewrite this account's database rows as the previous version wrote them: the id in clear, the
    // whole payload (with its jti) in clear, nothing sealed.
    const atRest = new OidcAtRest(nyckel.box);
    const sub = tokens.claims()!.sub;
    const rows = await nyckel.db.prisma.oidcModel.findMany({ where: { payload: { path: ['accountId'], equals: sub } } });
    expect(rows.map((r) => r.type).sort()).toEqual(expect.arrayContaining(['Grant', 'RefreshToken', 'Session']));
    for (const row of rows) {
      const payload = atRest.open(row.type, row.id, row.sealed!) as AdapterPayload & { jti: string };
      await nyckel.db.prisma.oidcModel.update({
        where: { type_id: { type: row.type, id: row.id } },
        data: { id: payload.jti, payload: payload as object, sealed: null },
      });
    }
    expect(await storedText()).toContain(tokens.refresh_token!);

    await sealLegacySecrets(nyckel.db.prisma, nyckel.box, createLogger('silent'));
    expect(found(await storedText(), { refresh: tokens.refresh_token!, session: sessionCookie(browser) })).toEqual([]);
    expect(await nyckel.db.prisma.oidcModel.count({ where: { sealed: null } })).toBe(0);
    // The browser is still signed in (no login form), and the refresh token still works.
    const again = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid' });
    expect((await browser.go(again.url.toString())).url).toContain('code=');
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).resolves.toBeTruthy();
  });
});
