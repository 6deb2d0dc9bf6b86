import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { replaceRecoveryCodes } from '../../src/factors/recovery-code/index.ts';
import { newTotpSecret } from '../../src/factors/totp/otp.ts';
import { TOTP_SECRET_PURPOSE } from '../../src/factors/totp/index.ts';
import { FormBrowser, findForm, textOf, type Page } from '../support/browser.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { codeAt } from '../support/otp.ts';
import { relyingParty, startAuthorization, type AuthorizationStart } from '../support/relying-party.ts';
import { testDatabaseKind } from '../support/database.ts';

// The attack of the outside review: someone who knows a victim's password, on a client that requires
// a second factor, signs in as the victim with their own second factor by changing the user of one
// sign-in (one interaction) between the password and the second step.
let nyckel: TestNyckel;
const CLIENT = 'authapp';
const callbackStop = (url: URL) => url.port === '4000';
let counter = 0;
// PGlite runs one query at a time and hides most races: the PostgreSQL project tries many more times.
const TRIES = testDatabaseKind() === 'postgres' ? 25 : 4;

beforeAll(async () => {
  // The attacker sends many codes on purpose here: the send limits are another test's subject.
  const unlimited = { NYCKEL_MAIL_BUDGET_PER_ADDRESS: '1000', NYCKEL_MAIL_BUDGET_PER_ACCOUNT: '1000', NYCKEL_MAIL_BUDGET_PER_IP: '1000' };
  nyckel = await startTestNyckel({ env: { NYCKEL_CODE_RESEND_COOLDOWN: '0', NYCKEL_FACTOR_MAX_FAILURES: '100', ...unlimited } });
});
afterAll(() => nyckel?.stop());

async function newUser(name: string) {
  const email = `${name}${++counter}@binding.example`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, locale: 'en' });
  return { email, user };
}

async function withApp(userId: string): Promise<string> {
  const secret = newTotpSecret();
  const row = await nyckel.db.prisma.factorEnrolment.create({ data: { userId, type: 'totp', label: 'Phone', confirmed: true } });
  await nyckel.db.prisma.factorEnrolment.update({ where: { id: row.id }, data: { secret: Buffer.from(nyckel.box.seal(TOTP_SECRET_PURPOSE, secret, row.id)) } });
  return secret;
}

interface SignIn {
  config: oidc.Configuration;
  start: AuthorizationStart;
  browser: FormBrowser;
  login: Page;
  uid: string;
}

async function begin(): Promise<SignIn> {
  const config = await relyingParty(nyckel.url, CLIENT);
  const start = await startAuthorization(config, { redirect_uri: `http://localhost:4000/${CLIENT}-cb`, scope: 'openid email' });
  const browser = new FormBrowser(callbackStop);
  const login = await browser.go(start.url.toString());
  const uid = /\/interaction\/([^/]+)\/login/.exec(findForm(login.html, '/login').action)![1];
  return { config, start, browser, login, uid };
}

const password = (s: SignIn, email: string) => s.browser.submit(s.login, '/login', { email, password: TEST_PASSWORD });
const page = (s: SignIn, path: string) => s.browser.go(`${nyckel.url}/interaction/${s.uid}${path}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** POST /mfa/continue and follow: the subject the relying party gets, if the sign-in ended. */
async function continueAndRead(s: SignIn, csrfFrom: Page): Promise<{ sub: string; acr: unknown } | undefined> {
  const csrf = findForm(csrfFrom.html, /\/interaction\//).hidden._csrf;
  const after = await s.browser.go(`${nyckel.url}/interaction/${s.uid}/mfa/continue`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: csrf }).toString(),
  });
  return subjectOf(s, after);
}

async function subjectOf(s: SignIn, landed: Page): Promise<{ sub: string; acr: unknown } | undefined> {
  if (!landed.url.includes('code=')) return undefined;
  const tokens = await oidc.authorizationCodeGrant(s.config, new URL(landed.url), {
    pkceCodeVerifier: s.start.verifier,
    expectedState: s.start.state,
    expectedNonce: s.start.nonce,
  });
  const claims = tokens.claims()!;
  return { sub: claims.sub, acr: claims.acr };
}

/** Each way the attacker answers their own second factor, from the page after their own password. */
const factorKinds: Record<string, (attacker: { email: string; user: { id: string } }, s: SignIn) => Promise<() => Promise<Page>>> = {
  'recovery-code': async (attacker, s) => {
    const [code] = await replaceRecoveryCodes(nyckel.db.prisma, nyckel.box, attacker.user.id, 10);
    const codePage = await page(s, '/mfa/recovery-code');
    return () => s.browser.submit(codePage, '/verify', { code });
  },
  totp: async (attacker, s) => {
    const secret = await withApp(attacker.user.id);
    const codePage = await page(s, '/mfa/totp');
    const code = await codeAt(secret, 0);
    return () => s.browser.submit(codePage, '/verify', { code });
  },
  'email-code': async (attacker, s) => {
    const start = await page(s, '/mfa/email-code');
    const sent = await s.browser.submit(start, '/start', { target: /value="([0-9a-f-]{36})"/.exec(start.html)![1] });
    const code = codeIn((await latestMail(nyckel.db.prisma, attacker.email)).text);
    return () => s.browser.submit(sent, '/verify', { code });
  },
};

describe('a sign-in is bound to one user from its first step', () => {
  for (const [kind, prepare] of Object.entries(factorKinds)) {
    test(`${kind}: the attacker's factor, answered after the victim's password on the same sign-in, never signs in as the victim`, async () => {
      const victim = await newUser('victim');
      const attacker = await newUser('attacker');
      const s = await begin();
      await password(s, attacker.email);
      const answer = await prepare(attacker, s);
      const victimStep = await password(s, victim.email);
      expect(victimStep.url).toMatch(/\/mfa/);
      const answered = await answer();
      const ended = (await subjectOf(s, answered)) ?? (await continueAndRead(s, victimStep));
      expect(ended?.sub).not.toBe(victim.user.id);
      // The victim's sign-in is empty but for the password: their own second factor is still asked for.
      const record = await nyckel.db.prisma.signInAttempt.findUniqueOrThrow({ where: { uid: s.uid } });
      expect(record.userId).toBe(victim.user.id);
      expect((record.verified as Array<{ factor: string }>).map((v) => v.factor)).toEqual(['password']);
    });

    test(`${kind}: racing the victim's password against the attacker's answer, ${TRIES} times, never yields the victim with acr mfa`, async () => {
      const victim = await newUser('victim');
      const attacker = await newUser('attacker');
      for (let i = 0; i < TRIES; i++) {
        const s = await begin();
        const afterOwn = await password(s, attacker.email);
        const answer = await prepare(attacker, s);
        const [victimStep, answered] = await Promise.all([password(s, victim.email), sleep(i % 6).then(answer)]);
        const results = [await subjectOf(s, answered), await subjectOf(s, victimStep), await continueAndRead(s, afterOwn).catch(() => undefined)];
        for (const result of results) if (result) expect(result).not.toEqual({ sub: victim.user.id, acr: 'urn:nyckel:acr:mfa' });
      }
    });
  }

  test('the first step for the same user again keeps what that user verified; another user starts empty', async () => {
    const alice = await newUser('alice');
    const bob = await newUser('bob');
    const s = await begin();
    await password(s, alice.email);
    const secret = await withApp(alice.user.id);
    await replaceRecoveryCodes(nyckel.db.prisma, nyckel.box, alice.user.id, 10);
    const recordOf = () => nyckel.db.prisma.signInAttempt.findUniqueOrThrow({ where: { uid: s.uid } });
    expect((await recordOf()).userId).toBe(alice.user.id);
    await password(s, bob.email);
    expect((await recordOf()).userId).toBe(bob.user.id);
    await password(s, alice.email);
    const codePage = await page(s, '/mfa/totp');
    const done = await s.browser.submit(codePage, '/verify', { code: await codeAt(secret, 0) });
    expect(await subjectOf(s, done)).toEqual({ sub: alice.user.id, acr: 'urn:nyckel:acr:mfa' });
    expect(textOf(done.html)).not.toContain('went wrong');
  });
});
