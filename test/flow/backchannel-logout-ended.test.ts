// Back-channel logout when Nyckel ends sessions itself (not at end_session): the account pages' "end this
// session", "end my other sessions", a new password and "delete all my devices", a password reset with a
// code by mail, an accepted invitation, and the help desk disabling a user or resetting their second factors. Each app of
// each ended session with a backchannel_logout_uri gets a logout token naming that session's sid.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { Invitations } from '../../src/accounts/invitations.ts';
import { parseClientsFile } from '../../src/clients/clients-file.ts';
import { enqueueMail } from '../../src/delivery/dispatcher.ts';
import { FormBrowser, textOf } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, testClientsYaml, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';
import { capturedLogs, signInToWebAndSpa, startLogoutReceiver } from '../support/logout.ts';

/** The apps' back-channel logout endpoints: every logout token, verified against Nyckel's JWKS. */
let receiver: Awaited<ReturnType<typeof startLogoutReceiver>>;
const logs = capturedLogs();
let nyckel: TestNyckel;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

function withBackchannelLogout(yaml: string, base: string): string {
  const lines = {
    web: '    post_logout_redirect_uris: [http://localhost:4000/bye]\n',
    spa: '    post_logout_redirect_uris: [http://localhost:4000/spa-bye]\n',
  };
  let changed = yaml;
  for (const [client, line] of Object.entries(lines)) {
    if (!changed.includes(line)) throw new Error(`test clients changed: ${client} has no post_logout_redirect_uris line`);
    changed = changed.replace(line, `${line}    backchannel_logout_uri: ${base}/${client}\n    backchannel_logout_session_required: true\n`);
  }
  return changed;
}

beforeAll(async () => {
  receiver = await startLogoutReceiver();
  const base = `http://127.0.0.1:${receiver.port}/backchannel`;
  nyckel = await startTestNyckel({
    logger: logs.logger,
    clients: parseClientsFile(withBackchannelLogout(testClientsYaml, base), 'test-clients.yaml'),
  });
});
beforeEach(() => {
  receiver.received.length = 0;
});
afterAll(async () => {
  await nyckel?.stop();
  await receiver?.close();
});

/** A user whose only address is unverified: the account pages then ask for no second factor (as in test/flow/account.test.ts). */
async function newUser() {
  const email = `ended-session${++counter}@example.test`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  return { email, user };
}

/** A user whose address is verified (a code by mail is then a way back in: a password reset, a lost device). */
async function verifiedUser() {
  const email = `ended-session${++counter}@example.test`;
  return { email, user: await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' }) };
}

/** In a browser of its own, the user signs in to "web" (with consent) and then "spa"; their ID tokens' claims. */
async function appsSession(email: string) {
  const { browser, webTokens, spaTokens } = await signInToWebAndSpa(nyckel.url, email);
  return { browser, web: decodeJwt(webTokens.id_token!), spa: decodeJwt(spaTokens.id_token!) };
}

/** In another browser, the user signs in to the account pages; their overview. */
async function accountPages(email: string) {
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(new URL('/account', nyckel.url).toString());
  await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
  const overview = await browser.go(new URL('/account', nyckel.url).toString());
  expect(overview.url).toBe(new URL('/account', nyckel.url).toString());
  return { browser, overview };
}

/** Each logout token received, verified (signature by Nyckel's keys, issuer, audience = the path's app, type). */
async function verifiedTokens(): Promise<JWTPayload[]> {
  const jwks = createRemoteJWKSet(new URL(`${nyckel.url}/jwks`));
  return Promise.all(
    receiver.tokens().map(async ({ path, token }) => {
      const audience = path.split('/').pop()!;
      const { payload } = await jwtVerify(token, jwks, { issuer: nyckel.url, audience, typ: 'logout+jwt' });
      expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
      expect(typeof payload.jti).toBe('string');
      return payload;
    }),
  );
}

/** What the apps of the session were told: one token each, naming the user and that app's sid. */
async function expectToldOf(session: { web: JWTPayload; spa: JWTPayload }) {
  const told = (await verifiedTokens()).map(({ aud, sub, sid }) => ({ aud, sub, sid }));
  expect(told.sort((a, b) => String(a.aud).localeCompare(String(b.aud)))).toEqual([
    { aud: 'spa', sub: session.spa.sub, sid: session.spa.sid },
    { aud: 'web', sub: session.web.sub, sid: session.web.sid },
  ]);
}

const sessionsOf = (userId: string) => nyckel.db.prisma.oidcModel.count({ where: { type: 'Session', payload: { path: ['accountId'], equals: userId } } });

describe('the account pages', () => {
  test('"end my other sessions" tells the apps of each ended session', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    const { browser, overview } = await accountPages(email);
    receiver.received.length = 0;
    await browser.submit(overview, '/account/sessions/end-others', {});
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(1);
  });

  test('"end this session" tells the apps of that session', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    const { browser, overview } = await accountPages(email);
    const action = /action="(\/account\/sessions\/[A-Za-z0-9_-]+\/end)"/.exec(overview.html)![1];
    receiver.received.length = 0;
    await browser.submit(overview, action, {});
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(1);
  });

  test('a new password signs out everywhere else, and the apps are told', async () => {
    const { email } = await newUser();
    const apps = await appsSession(email);
    const { browser } = await accountPages(email);
    const form = await browser.go(new URL('/account/password', nyckel.url).toString());
    receiver.received.length = 0;
    const done = await browser.submit(form, '/account/password', {
      current: TEST_PASSWORD,
      password: 'a whole new passphrase 2026',
      confirm: 'a whole new passphrase 2026',
    });
    expect(done.url).toBe(new URL('/account?done=password_changed', nyckel.url).toString());
    await expectToldOf(apps);
  });
});

describe('a code by mail', () => {
  test('a password reset ("Forgot your password?") tells the apps of the sessions it ended', async () => {
    const { email } = await verifiedUser();
    const apps = await appsSession(email);
    const spa = await relyingParty(nyckel.url, 'spa');
    const start = await startAuthorization(spa, { redirect_uri: 'http://localhost:4000/spa-cb', ui_locales: 'en' });
    const browser = new FormBrowser(callbackStop);
    const login = await browser.go(start.url.toString());
    const forgot = await browser.go(new URL(/href="(\/interaction\/[^"]+\/forgot-password)"/.exec(login.html)![1], nyckel.url).toString());
    const codePage = await browser.submit(forgot, /\/forgot-password$/, { name: email });
    const newPage = await browser.submit(codePage, '/forgot-password/code', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    receiver.received.length = 0;
    const done = await browser.submit(newPage, '/forgot-password/new', { password: 'a whole new passphrase 2026', confirm: 'a whole new passphrase 2026' });
    expect(done.url).toMatch(/^http:\/\/localhost:4000\/spa-cb\?code=/);
    await expectToldOf(apps);
  });

  test('"delete all my devices" tells the apps of the other sessions', async () => {
    const { email, user } = await verifiedUser();
    const apps = await appsSession(email);
    await nyckel.db.prisma.factorEnrolment.create({ data: { userId: user.id, type: 'totp', label: 'Lost phone', confirmed: true } });
    const browser = new FormBrowser(callbackStop);
    const login = await browser.go(new URL('/account/lost-device', nyckel.url).toString());
    const page = await browser.submit(login, '/login', { email, password: TEST_PASSWORD });
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    const codePage = await browser.submit(page, '/account/lost-device/start', { target });
    receiver.received.length = 0;
    const done = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, email)).text) });
    expect(textOf(done.html)).toContain('All your devices are deleted');
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(1);
  });
});

describe('an invitation', () => {
  test('accepting it (a new password) tells the apps of the sessions the account had', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    // Sent as an operator does; accepted on Nyckel's own invitation page.
    const invitations = new Invitations(
      nyckel.db.prisma,
      nyckel.box,
      nyckel.audit,
      { enqueue: (tx, mail) => enqueueMail(tx, nyckel.box, mail), kick: () => nyckel.mail.dispatcher.kick() },
      { issuer: nyckel.settings.issuer, ttlSeconds: nyckel.settings.signIn.invitationTtl, defaultLocale: 'en' },
    );
    await invitations.invite(user, { actor: 'test' });
    const link = /(https?:\/\/\S+\/invite\/\S+)/.exec((await latestMail(nyckel.db.prisma, email)).text)![1];
    const browser = new FormBrowser();
    const choose = await browser.go(link);
    receiver.received.length = 0;
    await browser.submit(choose, /\/invitation$/, { password: 'my very own first passphrase', confirm: 'my very own first passphrase' });
    expect(await nyckel.db.prisma.invitation.count({ where: { userId: user.id, usedAt: { not: null } } })).toBe(1);
    await expectToldOf(apps);
  });
});

describe('the help desk', () => {
  const adminToken = async () => {
    const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
    return (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: `${nyckel.url}/admin` })).access_token;
  };
  const disable = async (userId: string) =>
    fetch(`${nyckel.url}/admin/v1/users/${userId}/disable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, accept: 'application/json' },
    });

  test('disabling a user tells the apps of every session', async () => {
    const { email, user } = await newUser();
    const first = await appsSession(email);
    const second = await appsSession(email);
    receiver.received.length = 0;
    expect((await disable(user.id)).status).toBe(200);
    const told = (await verifiedTokens()).map(({ aud, sid }) => `${String(aud)} ${String(sid)}`).sort();
    expect(told).toEqual([first.web, first.spa, second.web, second.spa].map(({ aud, sid }) => `${String(aud)} ${String(sid)}`).sort());
    expect(await sessionsOf(user.id)).toBe(0);
  });

  test('resetting the second factors tells the apps of every session', async () => {
    const { email, user } = await newUser();
    const apps = await appsSession(email);
    receiver.received.length = 0;
    const reset = await fetch(`${nyckel.url}/admin/v1/users/${user.id}/reset-factors`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, accept: 'application/json', 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'ticket 7: phone stolen' }),
    });
    expect(reset.status).toBe(200);
    await expectToldOf(apps);
    expect(await sessionsOf(user.id)).toBe(0);
  });

  test('an app that fails to answer does not stop the revocation; Nyckel logs a warning naming it', async () => {
    const { email, user } = await newUser();
    await appsSession(email);
    receiver.state.answerStatus = 500;
    logs.clear();
    try {
      expect((await disable(user.id)).status).toBe(200);
    } finally {
      receiver.state.answerStatus = 200;
    }
    expect(receiver.tokens()).toHaveLength(2);
    expect(await sessionsOf(user.id)).toBe(0);
    const warned = logs
      .entries()
      .filter((entry) => entry.msg === 'back-channel logout failed')
      .map((entry) => entry.clientId)
      .sort();
    expect(warned).toEqual(['spa', 'web']);
  });
});
