import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import * as oidc from 'openid-client';
import { pseudonymOf } from '../../src/accounts/pseudonymise.ts';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { rowsNaming, secretsIn } from '../support/personal-data.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/** GET /users/{id}/export and POST /users/{id}/erase, as a help-desk tool calls them with a real token. */
let nyckel: TestNyckel;
let adminToken: string;
let counter = 0;
const callbackStop = (url: URL) => url.port === '4000';

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${nyckel.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${adminToken}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  nyckel = await startTestNyckel();
  const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
  adminToken = (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: `${nyckel.url}/admin` })).access_token;
});
afterAll(() => nyckel?.stop());

/** A user signed in to a relying party (a session, a grant and a refresh token), with an app's secret and a mail queued. */
async function userWithAccess() {
  const n = ++counter;
  const names = { email: `admin-gdpr${n}@scb.example`, phone: `+4670765430${n}`, name: `Erik Admin ${n}` };
  const user = await nyckel.accounts.create({ email: names.email, password: TEST_PASSWORD, name: names.name, phone: names.phone }, { actor: 'test' });
  await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: null } });
  const config = await relyingParty(nyckel.url, 'web', 'web-secret-web-secret-0001');
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/cb', scope: 'openid email offline_access', prompt: 'consent' });
  const { callback } = await signInWithPassword(new FormBrowser(callbackStop), start, { email: names.email, password: TEST_PASSWORD });
  const tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: start.verifier,
    expectedState: start.state,
    expectedNonce: start.nonce,
  });
  const totpSecret = `JBSWY3DPEHPK3PXP${n}ABCDEFGH`;
  await nyckel.db.prisma.factorEnrolment.create({
    data: { userId: user.id, type: 'totp', label: 'Phone', confirmed: true, secret: nyckel.box.seal('factor-secret', totpSecret) },
  });
  return { user, names, config, tokens, totpSecret };
}

describe("admin API: a user's data", () => {
  test('GET /users/{id}/export gives the same JSON as the account pages, without secrets, and is audited', async () => {
    const { user, names, tokens, totpSecret } = await userWithAccess();
    const exported = await call('GET', `/users/${user.id}/export`);
    expect(exported.status).toBe(200);
    expect(exported.body).toMatchObject({
      format: 'nyckel-personal-data/1',
      profile: { id: user.id, email: names.email, name: names.name },
      phones: [expect.objectContaining({ number: names.phone })],
      methods: [expect.objectContaining({ kind: 'totp', name: 'Phone' })],
      consents: [expect.objectContaining({ client: 'web' })],
    });
    const stored = await nyckel.db.prisma.user.findUniqueOrThrow({ where: { id: user.id } });
    const [enrolment] = await nyckel.db.prisma.factorEnrolment.findMany({ where: { userId: user.id } });
    expect(
      secretsIn(exported.text, {
        password: TEST_PASSWORD,
        passwordHash: stored.passwordHash,
        totpSecret,
        sealed: Buffer.from(enrolment.secret!).toString('base64'),
        refreshToken: tokens.refresh_token,
        accessToken: tokens.access_token,
      }),
    ).toEqual([]);
    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { userId: user.id, type: 'user.data_exported' } });
    expect(event.data).toEqual({ actor: 'client:helpdesk' });
    expect((await call('GET', '/users/00000000-0000-0000-0000-000000000000/export')).status).toBe(404);
  });

  test('POST /users/{id}/erase needs a reason, erases everything naming the user, keeps the events pseudonymised, and revokes the tokens', async () => {
    const { user, names, config, tokens } = await userWithAccess();
    expect(await call('POST', `/users/${user.id}/erase`, {})).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await call('POST', `/users/${user.id}/erase`, { reason: ' ' })).toMatchObject({ status: 400 });
    expect(await nyckel.db.prisma.user.count({ where: { id: user.id } })).toBe(1);

    const subject = pseudonymOf(nyckel.box, user.id);
    const erased = await call('POST', `/users/${user.id}/erase`, { reason: 'GDPR request #42 by mail' });
    expect(erased).toMatchObject({ status: 200, body: { erased: { subject, sessionsEnded: 1, grantsRevoked: 1 } } });
    expect(erased.body.erased.auditEventsPseudonymised).toBeGreaterThan(2);
    expect(await rowsNaming(nyckel.db.prisma, [user.id, names.email, names.phone, names.name], nyckel.redis?.prefix)).toEqual([]);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.fetchUserInfo(config, tokens.access_token, user.id)).rejects.toBeTruthy();

    const event = await nyckel.db.prisma.auditEvent.findFirstOrThrow({ where: { type: 'user.erased', data: { path: ['subject'], equals: subject } } });
    expect(event).toMatchObject({ userId: null, data: expect.objectContaining({ reason: 'GDPR request #42 by mail', actor: 'client:helpdesk' }) });
    const kept = await nyckel.db.prisma.auditEvent.findMany({ where: { data: { path: ['subject'], equals: subject }, NOT: { type: 'user.erased' } } });
    expect(kept.map((row) => row.type)).toEqual(expect.arrayContaining(['user.created', 'login.succeeded', 'consent.granted']));
    expect(kept.every((row) => row.userId === null && row.ip === null && row.userAgent === null)).toBe(true);

    expect((await call('POST', `/users/${user.id}/erase`, { reason: 'again' })).status).toBe(404);
    expect((await call('GET', `/users/${user.id}`)).status).toBe(404);
  });
});
