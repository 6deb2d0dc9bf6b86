import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { hash as bcryptHash } from '@node-rs/bcrypt';
import * as oidc from 'openid-client';
import { decodeJwt, SignJWT, generateKeyPair } from 'jose';
import { FormBrowser } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, signInWithPassword, startAuthorization } from '../support/relying-party.ts';

/**
 * The admin API as a help-desk tool calls it: JSON over HTTP with access tokens that Nyckel itself
 * issues by client_credentials (openid-client), for the admin resource and the nyckel:admin scope.
 */
let nyckel: TestNyckel;
let adminResource: string;
let adminToken: string;
const email = 'lena.berg@scb.example';
let userId: string;

const callbackStop = (url: URL) => url.port === '4000';

async function call(method: string, path: string, options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
  const token = options.token === undefined ? adminToken : options.token;
  const response = await fetch(`${nyckel.url}/admin/v1${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...options.headers,
    },
    body: options.body === undefined ? undefined : typeof options.body === 'string' ? options.body : JSON.stringify(options.body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

/** A session in a browser of the user, through the hosted sign-in page (first-party client: no consent). */
async function signedInBrowser() {
  const config = await relyingParty(nyckel.url, 'spa');
  const browser = new FormBrowser(callbackStop);
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb' });
  await signInWithPassword(browser, start, { email, password: TEST_PASSWORD }, { consent: false });
  return { browser, config };
}

/** Whether the browser's session is still there: an authorization request with prompt=none says. */
async function sessionAlive(browser: FormBrowser, config: oidc.Configuration) {
  const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/spa-cb', prompt: 'none' });
  const page = await browser.go(start.url.toString());
  const callback = new URL(page.url);
  return callback.searchParams.has('code') ? true : callback.searchParams.get('error') === 'login_required' ? false : undefined;
}

beforeAll(async () => {
  nyckel = await startTestNyckel();
  adminResource = `${nyckel.url}/admin`;
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD, name: 'Lena Berg', phone: '+46701234573' }, { actor: 'test' });
  userId = user.id;
  const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
  adminToken = (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: adminResource })).access_token;
});
afterAll(() => nyckel?.stop());

describe('admin API access tokens', () => {
  test('a client_credentials token of the helpdesk client is an opaque token for the admin resource with the admin scope, for 10 minutes', async () => {
    expect(() => decodeJwt(adminToken)).toThrow();
    const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
    const fresh = await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: adminResource });
    expect(fresh).toMatchObject({ token_type: 'bearer', scope: 'nyckel:admin', expires_in: 600 });
    expect(await oidc.tokenIntrospection(helpdesk, fresh.access_token)).toMatchObject({
      active: true,
      aud: adminResource,
      scope: 'nyckel:admin',
      client_id: 'helpdesk',
    });
  });

  test('a token revoked at /token/revocation is refused at once; an expired one too', async () => {
    const helpdesk = await relyingParty(nyckel.url, 'helpdesk', 'helpdesk-secret-helpdesk-01');
    const token = (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: adminResource })).access_token;
    expect((await call('GET', `/users/${userId}`, { token })).status).toBe(200);
    await oidc.tokenRevocation(helpdesk, token);
    const revoked = await call('GET', `/users/${userId}`, { token });
    expect(revoked.status).toBe(401);
    expect(revoked.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);

    const expiring = (await oidc.clientCredentialsGrant(helpdesk, { scope: 'nyckel:admin', resource: adminResource })).access_token;
    // Past its 10 minutes and oidc-provider's 15 s of clock tolerance.
    const later = Date.now() + 620_000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      expect((await call('GET', `/users/${userId}`, { token: expiring })).status).toBe(401);
    } finally {
      clock.mockRestore();
    }
  });

  test("no token, a garbage token, a forged token and another API's token are refused with 401 and a Bearer challenge", async () => {
    const none = await call('GET', `/users/${userId}`, { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="nyckel-admin"');
    expect(none.body).toMatchObject({ error: 'invalid_token' });

    const garbage = await call('GET', `/users/${userId}`, { token: 'not.a.token' });
    expect(garbage.status).toBe(401);
    expect(garbage.headers.get('www-authenticate')).toMatch(/^Bearer realm="nyckel-admin", error="invalid_token"/);

    // Right claims, but signed by a key that is not Nyckel's.
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await new SignJWT({ scope: 'nyckel:admin', client_id: 'helpdesk' })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt' })
      .setIssuer(nyckel.url)
      .setAudience(adminResource)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await call('GET', `/users/${userId}`, { token: forged })).status).toBe(401);

    // A real token from Nyckel, but for the reports API.
    const machine = await relyingParty(nyckel.url, 'machine', 'machine-secret-machine-01');
    const reportsToken = (await oidc.clientCredentialsGrant(machine, { scope: 'reports:read', resource: 'https://api.example.test/reports' })).access_token;
    const otherApi = await call('GET', `/users/${userId}`, { token: reportsToken });
    expect(otherApi.status).toBe(401);
    expect(otherApi.body.error_description).toMatch(/not for this API/);
  });

  test('a client without nyckel:admin cannot get the scope, and its token for the admin resource is refused with 403 insufficient_scope', async () => {
    const reports = await relyingParty(nyckel.url, 'reports', 'reports-secret-reports-0001');
    await expect(oidc.clientCredentialsGrant(reports, { scope: 'nyckel:admin', resource: adminResource })).rejects.toMatchObject({ error: 'invalid_scope' });
    const token = (await oidc.clientCredentialsGrant(reports, { resource: adminResource })).access_token;
    expect(await oidc.tokenIntrospection(reports, token)).toMatchObject({ active: true, aud: adminResource, client_id: 'reports' });
    const refused = await call('POST', `/users/${userId}/reset-factors`, { token, body: { reason: 'should not happen' } });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ error: 'insufficient_scope' });
    expect(refused.headers.get('www-authenticate')).toMatch(/error="insufficient_scope".*scope="nyckel:admin"/);
    expect(await nyckel.db.prisma.auditEvent.count({ where: { userId, type: 'user.factors_reset' } })).toBe(0);
  });
});

describe('admin API operations', () => {
  test("reset a user's factors: methods, phones, remembered browsers and sessions go, emails stay, the event names the client and the reason", async () => {
    const { prisma } = nyckel.db;
    await prisma.factorEnrolment.createMany({
      data: [
        { userId, type: 'totp', label: 'Phone app', confirmed: true },
        { userId, type: 'recovery-code', label: 'Recovery code', confirmed: true },
      ],
    });
    await prisma.rememberedBrowser.create({ data: { userId, tokenHash: 'admin-test-hash', factor: 'totp', expiresAt: new Date(Date.now() + 86_400_000) } });
    const { browser, config } = await signedInBrowser();
    expect(await sessionAlive(browser, config)).toBe(true);

    const before = await call('GET', `/users/${userId}`);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ id: userId, email, rememberedBrowsers: 1, phones: [{ number: '+46701234573' }] });
    expect(before.body.methods.map((m: { type: string }) => m.type).sort()).toEqual(['recovery-code', 'totp']);

    const missingReason = await call('POST', `/users/${userId}/reset-factors`, { body: { reason: '  ' } });
    expect(missingReason.status).toBe(400);
    expect(missingReason.body).toMatchObject({ error: 'invalid_request' });
    expect(missingReason.body.error_description).toMatch(/^reason: is required/);

    const reset = await call('POST', `/users/${userId}/reset-factors`, { body: { reason: 'ticket 4711: lost phone' } });
    expect(reset.status).toBe(200);
    expect(reset.body.removed).toMatchObject({ factors: 2, phones: 1, rememberedBrowsers: 1 });
    expect(reset.body.removed.sessions).toBeGreaterThanOrEqual(1);
    expect(await sessionAlive(browser, config)).toBe(false);

    const after = await call('GET', `/users/${userId}`);
    expect(after.body).toMatchObject({ methods: [], phones: [], rememberedBrowsers: 0, emails: [{ address: email, signIn: true, verified: true }] });
    const events = await call('GET', `/audit?user=${encodeURIComponent(email)}&limit=5`);
    expect(events.body.events.at(-1)).toMatchObject({
      type: 'user.factors_reset',
      userId,
      data: { actor: 'client:helpdesk', reason: 'ticket 4711: lost phone' },
    });
  });

  test('create, look up, contact details, sign-in address, disable/enable and unlock, each audited with the client as actor', async () => {
    const created = await call('POST', '/users', { body: { email: 'Nils.Ek@SCB.example', name: 'Nils Ek', locale: 'sv' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'nils.ek@scb.example', name: 'Nils Ek', locale: 'sv', status: 'active' });
    const id = created.body.id as string;
    expect(created.headers.get('location')).toBe(`${nyckel.url}/admin/v1/users/${id}`);
    // No password given: nobody can sign in with one until it is set.
    expect(await nyckel.accounts.verifyPassword('nils.ek@scb.example', '')).toBeNull();

    expect((await call('POST', '/users', { body: { email: 'nils.ek@scb.example' } })).status).toBe(409);
    const bad = await call('POST', '/users', { body: { email: 'nils', locale: 'xx', shoe: 42 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error_description).toMatch(/unknown field\(s\) shoe/);

    expect((await call('GET', '/users?email=NILS.EK@scb.example')).body.users).toEqual([expect.objectContaining({ id, email: 'nils.ek@scb.example' })]);
    expect((await call('GET', '/users?email=nobody@scb.example')).body.users).toEqual([]);
    expect((await call('GET', '/users/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call('GET', '/users/not-a-uuid')).status).toBe(404);

    expect((await call('POST', `/users/${id}/emails`, { body: { address: 'nils@home.example', verified: true } })).status).toBe(201);
    expect((await call('POST', `/users/${id}/emails`, { body: { address: 'nils@home.example' } })).status).toBe(409);
    expect((await call('POST', `/users/${id}/phones`, { body: { number: '+46701234574' } })).body).toEqual({ number: '+46701234574', verified: false });
    expect((await call('POST', `/users/${id}/phones`, { body: { number: '0701234574' } })).status).toBe(400);
    expect((await call('DELETE', `/users/${id}/phones/${encodeURIComponent('+46701234574')}`)).status).toBe(204);
    expect((await call('DELETE', `/users/${id}/phones/${encodeURIComponent('+46701234574')}`)).status).toBe(404);

    const clash = await call('POST', `/users/${id}/sign-in-email`, { body: { email } });
    expect(clash.status).toBe(409);
    expect(clash.body.error_description).toBe(`another user already signs in with ${email}`);
    const moved = await call('POST', `/users/${id}/sign-in-email`, { body: { email: 'nils@home.example' } });
    expect(moved.status).toBe(200);
    expect(moved.body.email).toBe('nils@home.example');
    expect((await call('DELETE', `/users/${id}/emails/${encodeURIComponent('nils.ek@scb.example')}`)).status).toBe(204);

    const invitation = await call('POST', `/users/${id}/invitation`);
    expect(invitation.body).toEqual({ to: 'nils@home.example', expiresAt: expect.stringMatching(/^\d{4}-/) });
    expect((await nyckel.db.prisma.delivery.findFirstOrThrow({ where: { recipient: 'nils@home.example', purpose: 'invitation' } })).status).toBeDefined();
    const named = await call('POST', `/users/${id}/username`, { body: { username: ' Nils.EK ' } });
    expect(named.body).toMatchObject({ username: 'nils.ek', email: 'nils@home.example' });
    expect((await call('GET', '/users?username=NILS.ek')).body.users).toEqual([expect.objectContaining({ id, username: 'nils.ek' })]);
    expect((await call('POST', `/users/${id}/username`, { body: { username: 'has space' } })).status).toBe(400);
    expect((await call('GET', `/audit?user=nils.ek&limit=1`)).body.events).toEqual([
      expect.objectContaining({ type: 'user.username_changed', username: 'nils.ek' }),
    ]);

    expect((await call('POST', `/users/${id}/disable`)).body.status).toBe('disabled');
    expect((await call('POST', `/users/${id}/enable`)).body.status).toBe('active');

    await nyckel.db.prisma.rateLimit.createMany({
      data: [
        { key: `factor-failures:totp:${id}`, points: 99, expire: new Date(Date.now() + 600_000) },
        { key: `login-account:user:${id}`, points: 99, expire: new Date(Date.now() + 600_000) },
      ],
    });
    const locked = await call('GET', `/users/${id}`);
    expect(locked.body.locked).toBe(true);
    expect(locked.body.locks.map((l: { kind: string }) => l.kind)).toEqual(['password', 'totp']);
    expect((await call('POST', `/users/${id}/unlock`)).body).toEqual({ cleared: 2 });
    expect((await call('GET', `/users/${id}`)).body).toMatchObject({ locked: false, locks: [] });

    const events = (await call('GET', `/audit?user=${id}&limit=20`)).body.events as Array<{ type: string; data: { actor: string } }>;
    expect(events.map((e) => e.type)).toEqual([
      'user.created',
      'user.email_added',
      'user.phone_added',
      'user.phone_removed',
      'user.email_changed',
      'user.email_removed',
      'user.invited',
      'user.username_changed',
      'user.disabled',
      'user.enabled',
      'user.unlocked',
    ]);
    expect(new Set(events.map((e) => e.data.actor))).toEqual(new Set(['client:helpdesk']));
    // A single create is not an import: no summary event.
    expect(await nyckel.db.prisma.auditEvent.count({ where: { type: 'users.imported' } })).toBe(0);
  });

  test('import over the API: bad rows reported by line, good ones created, the second time nothing changes', async () => {
    const csv = 'email,name,locale\nimport1@scb.example,One,sv\nnot-an-email,Two,sv\nimport3@scb.example,Three,fr\nimport4@scb.example,,\n';
    const send = () => call('POST', '/users/import', { body: csv, headers: { 'content-type': 'text/csv' } });
    const first = await send();
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ created: 2, existing: 0, invalid: 2 });
    expect(first.body.rows.filter((r: { status: string }) => r.status === 'invalid')).toEqual([
      { line: 3, status: 'invalid', email: 'not-an-email', problems: ['email: is not a valid email address'] },
      { line: 4, status: 'invalid', email: 'import3@scb.example', problems: ['locale: must be one of sv, da, en'] },
    ]);
    const users = () => nyckel.db.prisma.user.findMany({ where: { email: { startsWith: 'import' } }, orderBy: { email: 'asc' } });
    const before = await users();
    expect(before.map((u) => u.email)).toEqual(['import1@scb.example', 'import4@scb.example']);
    const eventsBefore = await nyckel.db.prisma.auditEvent.count();

    const second = await send();
    expect(second.body).toMatchObject({ created: 0, existing: 2, invalid: 2 });
    expect(await users()).toEqual(before);
    expect(await nyckel.db.prisma.auditEvent.count()).toBe(eventsBefore);

    const json = await call('POST', '/users/import', { body: '[\n {"email": "import5@scb.example"},\n {"email": 5}\n]' });
    expect(json.body).toMatchObject({
      created: 1,
      invalid: 1,
      rows: [
        { line: 2, status: 'created' },
        { line: 3, status: 'invalid', problems: ['email: must be an email address'] },
      ],
    });
    expect(await call('POST', '/users/import', { body: '{"email": "x@scb.example"}' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect((await call('POST', '/users/import', { body: 'email', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
  });

  test('create with the hash and authenticator app another system keeps; weak hashes refused unless allowed', async () => {
    const salt = randomBytes(16);
    const value = pbkdf2Sync('kept from keycloak', salt, 27500, 64, 'sha256').toString('base64');
    const credential = { secretData: { value, salt: salt.toString('base64') }, credentialData: { hashIterations: 27500, algorithm: 'pbkdf2-sha256' } };
    const created = await call('POST', '/users', { body: { email: 'hashed@scb.example', password_hash: credential, totp_secret: 'JBSWY3DPEHPK3PXPJBSWY3DP' } });
    expect(created.status).toBe(201);
    expect(created.body.methods).toEqual([expect.objectContaining({ type: 'totp', confirmed: true })]);
    expect(await nyckel.accounts.verifyPassword('hashed@scb.example', 'kept from keycloak')).toMatchObject({ id: created.body.id });

    const weak = await bcryptHash('kept from elsewhere', 6);
    const refused = await call('POST', '/users', { body: { email: 'weak@scb.example', password_hash: weak } });
    expect(refused.status).toBe(400);
    expect(refused.body.error_description).toBe('password_hash: weak (bcrypt cost 6, lower than 8); refused unless --allow-weak-hashes');
    const allowed = await call('POST', '/users?allow_weak_hashes=true', { body: { email: 'weak@scb.example', password_hash: weak } });
    expect(allowed.status).toBe(201);
    expect(await nyckel.accounts.verifyPassword('weak@scb.example', 'kept from elsewhere')).toBeNull();
    const unreadable = await call('POST', '/users', { body: { email: 'odd@scb.example', password_hash: '$sha1$whatever' } });
    expect(unreadable.status).toBe(400);
    expect(unreadable.body.error_description).toMatch(/^password_hash: cannot be read: not a known hash format/);
  });

  test('bad requests get JSON errors: not JSON, malformed JSON, bad query, unknown route', async () => {
    const form = await call('POST', `/users/${userId}/reset-factors`, { body: 'reason=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form).toMatchObject({ status: 415, body: { error: 'unsupported_media_type' } });
    const malformed = await call('POST', `/users/${userId}/reset-factors`, { body: '{"reason":' });
    expect(malformed).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect((await call('GET', '/audit?limit=0')).status).toBe(400);
    expect(await call('GET', '/nothing-here')).toMatchObject({ status: 404, body: { error: 'not_found' } });
    // Without a token, even an unknown route says only that a token is needed.
    expect((await call('GET', '/nothing-here', { token: null })).status).toBe(401);
  });

  test('an operator binds and unbinds the BankID personal number: checked, sealed, masked in answers, audited', async () => {
    const bad = await call('PUT', `/users/${userId}/personal-number`, { body: { number: '19900101-2386' } });
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(bad.body.error_description).toContain('check digit');
    const bound = await call('PUT', `/users/${userId}/personal-number`, { body: { number: '19900101-2385' } });
    expect(bound).toMatchObject({ status: 200, body: { personal_number: '19xxxxxx-xx85' } });
    const row = await nyckel.db.prisma.factorEnrolment.findFirst({ where: { userId, type: 'bankid' } });
    expect(JSON.stringify(row)).not.toContain('199001012385');
    const events = await nyckel.db.prisma.auditEvent.findMany({
      where: { userId, type: { in: ['factor.enrolled', 'factor.removed'] } },
      orderBy: { id: 'asc' },
    });
    expect(events.at(-1)?.data).toMatchObject({ factor: 'bankid', actor: 'client:helpdesk' });
    expect((await call('DELETE', `/users/${userId}/personal-number`)).status).toBe(204);
    expect(await call('DELETE', `/users/${userId}/personal-number`)).toMatchObject({ status: 404, body: { error: 'not_found' } });
    expect((await call('PUT', `/users/${userId}/personal-number`, { token: null, body: { number: '19900101-2385' } })).status).toBe(401);
  });
});
