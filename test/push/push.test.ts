import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { textOf } from '../support/browser.ts';
import { DeviceSimulator } from '../support/device-simulator.ts';
import { FakePushService } from '../support/fake-push-service.ts';
import { latestMail } from '../support/mail.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { PIN, pushFlows } from './helpers.ts';

let nyckel: TestNyckel;
let push: FakePushService;
const MAX_FAILURES = 3;
const MAX_PUSHES = 4;

beforeAll(async () => {
  push = await new FakePushService().start();
  nyckel = await startTestNyckel({
    env: {
      NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS: 'true',
      NYCKEL_PUSH_MAX_PER_WINDOW: String(MAX_PUSHES),
      NYCKEL_PUSH_DENY_COOLDOWN_SECONDS: '300',
      NYCKEL_FACTOR_MAX_FAILURES: String(MAX_FAILURES),
    },
  });
});
afterAll(async () => {
  await nyckel?.stop();
  await push?.stop();
});

const flows = pushFlows(() => ({ nyckel, push }));
const { url, userWithPhone, pushSignIn, status, tokensFrom } = flows;

async function audits(userId: string) {
  return (await nyckel.db.prisma.auditEvent.findMany({ where: { userId }, orderBy: { id: 'asc' } })).map((e) => e.type);
}

describe('push approval with number matching', () => {
  test('a phone added on the account pages approves a sign-in: the push is VAPID-signed and aes128gcm-encrypted; acr mfa, amr pwd+swk+pin', async () => {
    const { user, device, accountBrowser } = await userWithPhone();
    const overview = textOf((await accountBrowser.go(url('/account'))).html);
    expect(overview).toContain('Nyckel Authenticator (push) Primary My work phone');
    expect(overview).toContain('Nyckel Authenticator (QR code) My work phone');
    // Stored: the named phone, confirmed, its key; the PIN nowhere, the PIN key and QR secret only sealed.
    const row = await nyckel.db.prisma.factorEnrolment.findFirstOrThrow({ where: { userId: user.id, type: 'push' } });
    expect(row).toMatchObject({ id: device.deviceId, label: 'My work phone', confirmed: true });
    expect(JSON.stringify(row.data)).not.toContain(PIN);
    expect((row.data as { publicKey: { crv: string } }).publicKey.crv).toBe('P-256');
    expect(row.secret).not.toBeNull();
    expect(await audits(user.id)).toEqual(expect.arrayContaining(['push.device_registered', 'account.method_added']));

    const flow = await pushSignIn(user.email!);
    expect(textOf(flow.page.html)).toContain('Open Nyckel Authenticator on your phone and pick this number');
    expect(textOf(flow.page.html)).toContain('Send a new request');
    expect(textOf(flow.page.html)).toContain('Use another method');
    const request = await device.nextRequest(flow.challengeId);
    expect(request).toMatchObject({ type: 'approval', client: 'Phone portal', challengeId: flow.challengeId });
    expect(request.numbers).toHaveLength(3);
    expect(request.numbers).toContain(flow.number);
    expect(request.ip).toMatch(/^127\.0\.0\.0\/24$/);
    expect(request.browser).toBeTruthy();
    expect(Date.parse(request.expiresAt) - Date.parse(request.time)).toBeGreaterThan(20_000);
    const delivered = push.received.find((p) => JSON.parse(p.payload).challengeId === flow.challengeId)!;
    expect(delivered).toMatchObject({ ttl: '25', urgency: 'high' });
    expect(delivered.vapid.sub).toMatch(/^mailto:/);

    expect(await status(flow.browser, flow.challengePath)).toMatchObject({ status: 'pending', number: flow.number });
    const answer = await device.answer(request, { decision: 'approve', number: flow.number, pin: PIN });
    expect(answer).toEqual({ status: 200, body: { status: 'approved' } });
    expect((await status(flow.browser, flow.challengePath)).status).toBe('verified');
    const done = await flow.browser.go(url(flow.challengePath));
    const tokens = await tokensFrom(flow.config, flow.start, done);
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'pin', 'mfa'] });
    expect(await audits(user.id)).toEqual(expect.arrayContaining(['push.approved', 'login.succeeded']));
  });

  test('the app lists the requests waiting for it (signed); a request from before is not listed once answered', async () => {
    const { user, device } = await userWithPhone({ push: false });
    const flow = await pushSignIn(user.email!);
    const listed = await device.pending();
    expect(listed.status).toBe(200);
    expect(listed.requests.map((r) => r.challengeId)).toEqual([flow.challengeId]);
    expect(listed.requests[0].numbers).toContain(flow.number);
    await device.answer(listed.requests[0], { decision: 'approve', number: flow.number, pin: PIN });
    expect((await device.pending()).requests).toEqual([]);
  });

  test('a trivial PIN is refused by the server (the token stays usable); a used token is refused', async () => {
    const { email } = await flows.newUser();
    const { link } = await flows.startAddingPhone(email);
    for (const pin of ['1234', '0000', '9876', '7890', '123', '12a4']) {
      const refused = await DeviceSimulator.register(link, { pin, push });
      expect({ pin, ...refused }).toMatchObject({ pin, status: 400, body: { error: 'trivial_pin' } });
    }
    expect((await DeviceSimulator.register(link, { pin: '4711', push })).status).toBe(201);
    expect(await DeviceSimulator.register(link, { pin: '4711', push })).toMatchObject({ status: 410, body: { error: 'token_expired' } });
  });

  test('picking the wrong number ends the request; the page says so and "Send a new request" sends a new push', async () => {
    const { user, device } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    const wrong = request.numbers.find((n) => n !== flow.number)!;
    expect(await device.answer(request, { decision: 'approve', number: wrong, pin: PIN })).toMatchObject({ status: 409, body: { error: 'wrong_number' } });
    const after = await status(flow.browser, flow.challengePath);
    expect(after).toMatchObject({ status: 'failed', message: expect.stringContaining('The wrong number was picked') });
    // Right number afterwards: the request is over.
    expect(await device.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).toMatchObject({ status: 409, body: { error: 'used' } });
    expect(await audits(user.id)).toContain('push.refused');

    const again = await flow.browser.go(url(`/interaction/${flow.uid}/mfa/push`));
    const second = flows.pushPage(again);
    expect(second.challengeId).not.toBe(flow.challengeId);
    const next = await device.nextRequest(second.challengeId);
    expect((await device.answer(next, { decision: 'approve', number: second.number, pin: PIN })).status).toBe(200);
    const tokens = await tokensFrom(flow.config, flow.start, await flow.browser.go(url(second.challengePath)));
    expect(tokens.claims()!.amr).toEqual(['pwd', 'swk', 'pin', 'mfa']);
  });

  test('wrong PINs are counted against the failure lock; then even the right PIN is refused', async () => {
    const { user, device } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    const first = await device.answer(request, { decision: 'approve', number: flow.number, pin: '1357' });
    expect(first).toEqual({ status: 401, body: { error: 'wrong_pin', attemptsLeft: MAX_FAILURES - 1 } });
    expect((await device.answer(request, { decision: 'approve', number: flow.number, pin: '1358' })).body.attemptsLeft).toBe(MAX_FAILURES - 2);
    const locked = await device.answer(request, { decision: 'approve', number: flow.number, pin: '1359' });
    expect(locked).toMatchObject({ status: 429, body: { error: 'locked' } });
    expect(locked.body.retryAfterSeconds).toBeGreaterThan(0);
    expect(await device.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).toMatchObject({ status: 429, body: { error: 'locked' } });
    expect((await status(flow.browser, flow.challengePath)).status).toBe('pending');
  });

  test('an expired request cannot be approved; the page says it ended', async () => {
    const { user, device } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    // The 25 seconds pass.
    await nyckel.db.prisma.factorChallenge.update({ where: { id: flow.challengeId }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expect(await device.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).toMatchObject({ status: 410, body: { error: 'expired' } });
    expect(await status(flow.browser, flow.challengePath)).toMatchObject({ status: 'failed', message: expect.stringContaining('ended without an answer') });
    const page = await flow.browser.go(url(flow.challengePath));
    expect(page.status).toBe(400);
    expect(textOf(page.html)).toContain('Send a new request');
  });

  test('a held status question ends when the request does, not 20 s later', async () => {
    const { user } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    // Two seconds are left of the request.
    await nyckel.db.prisma.factorChallenge.update({ where: { id: flow.challengeId }, data: { expiresAt: new Date(Date.now() + 2000) } });
    const asked = Date.now();
    const response = await flow.browser.request(url(`${flow.challengePath}/status?wait=20`));
    const waited = Date.now() - asked;
    expect(waited).toBeLessThan(8000);
    expect(JSON.parse(response.html)).toMatchObject({ status: 'failed', message: expect.stringContaining('ended without an answer') });
  });

  test('a replayed approval is refused, and parallel approvals: exactly one wins', async () => {
    const { user, device } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    const body = await device.answerBody(request, { decision: 'approve', number: flow.number, pin: PIN });
    const results = await Promise.all(Array.from({ length: 5 }, () => device.sendAnswer(body)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.error === 'used')).toBe(true);
    expect((await device.sendAnswer(body)).status).toBe(409);
    // A tampered answer (another number under the old signature) is not the device's.
    expect((await device.sendAnswer({ ...body, number: request.numbers.find((n) => n !== flow.number)! })).body.error).toBe('bad_signature');
    // The sign-in takes the approval once.
    const [a, b] = await Promise.all([flow.browser.go(url(flow.challengePath)), flow.browser.go(url(flow.challengePath))]);
    expect([a, b].filter((p) => p.url.includes('code=')).length).toBe(1);
  });

  test('push fatigue: at most the cap of unapproved pushes per window; then a clear refusal; an approved push does not count', async () => {
    const { user, device } = await userWithPhone();
    // A sign-in approved on the phone (its push went out at once after the password): no fatigue.
    const approved = await pushSignIn(user.email!);
    const request = await device.nextRequest(approved.challengeId);
    expect(await device.answer(request, { decision: 'approve', number: approved.number, pin: PIN })).toEqual({ status: 200, body: { status: 'approved' } });

    // Pushes left unanswered: the cap of them goes out, the approved one not counted.
    const flow = await pushSignIn(user.email!);
    for (let i = 1; i < MAX_PUSHES; i++) flows.pushPage(await flow.browser.go(url(`/interaction/${flow.uid}/mfa/push`)));
    const refused = await flow.browser.go(url(`/interaction/${flow.uid}/mfa/push`));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(textOf(refused.html)).toContain('Too many sign-in requests have been sent to your phone');
    expect(textOf(refused.html)).toContain('Use another method');
    const sent = push.received.filter((p) => p.id === device.subscriber!.subscription.endpoint.split('/').pop());
    expect(sent).toHaveLength(1 + MAX_PUSHES);
    const unapproved = await nyckel.db.prisma.factorChallenge.count({ where: { userId: user.id, factor: 'push', verifiedAt: null } });
    expect(unapproved).toBe(MAX_PUSHES);
  });

  test('deny as "not me": the request ends, the event is audited, the user is mailed, and pushes pause for the cool-down', async () => {
    const { user, device } = await userWithPhone();
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    expect(await device.answer(request, { decision: 'deny', notMe: true })).toEqual({ status: 200, body: { status: 'denied' } });
    expect(await status(flow.browser, flow.challengePath)).toMatchObject({ status: 'failed', message: 'The request was denied on your phone.' });
    expect(await audits(user.id)).toEqual(expect.arrayContaining(['push.denied', 'push.reported']));
    const mail = await latestMail(nyckel.db.prisma, user.email!);
    expect(mail.subject).toBe('A sign-in to your account was denied');
    expect(mail.text).toContain('tried to sign in to Phone portal');
    const again = await flow.browser.go(url(`/interaction/${flow.uid}/mfa/push`));
    expect(again.status).toBe(400);
    expect(textOf(again.html)).toContain('A request was just denied on your phone');
  });

  test('bad input to the device API: a clear 4xx in JSON', async () => {
    const post = (path: string, body: string, type = 'application/json') =>
      fetch(url(`/authenticator/api/${path}`), { method: 'POST', headers: { 'content-type': type }, body });
    expect((await post('approve', '{"challengeId":1}')).status).toBe(400);
    expect(await (await post('approve', 'not json')).json()).toEqual({ error: 'invalid_json' });
    expect((await post('approve', 'a=b', 'application/x-www-form-urlencoded')).status).toBe(415);
    const unknown = await post(
      'approve',
      JSON.stringify({ challengeId: crypto.randomUUID(), deviceId: crypto.randomUUID(), decision: 'approve', signature: 'AAAA' }),
    );
    expect(unknown.status).toBe(401);
    expect(
      (
        await post(
          'devices',
          JSON.stringify({
            token: 'x'.repeat(43),
            publicKey: { kty: 'EC', crv: 'P-256', x: 'a'.repeat(43), y: 'a'.repeat(43) },
            pin: '4711',
            pinSalt: 'a'.repeat(22),
          }),
        )
      ).status,
    ).toBe(410);
  });

  test("the phone's fingerprint or face instead of the PIN: set up with the PIN, then an assertion bound to the request and number; amr pwd+swk+user", async () => {
    const { user, device } = await userWithPhone();
    expect((await device.enableBiometric('1357')).body.error).toBe('wrong_pin');
    expect((await device.enableBiometric(PIN)).status).toBe(201);
    expect(await audits(user.id)).toContain('push.biometric_added');
    const flow = await pushSignIn(user.email!);
    const request = await device.nextRequest(flow.challengeId);
    // An assertion made for another number does not verify (and is counted like a wrong PIN).
    const other = request.numbers.find((n) => n !== flow.number)!;
    expect(await device.approveWithBiometric(request, flow.number, { signedNumber: other })).toMatchObject({
      status: 401,
      body: { error: 'biometric_failed' },
    });
    expect(await device.approveWithBiometric(request, flow.number)).toEqual({ status: 200, body: { status: 'approved' } });
    const tokens = await tokensFrom(flow.config, flow.start, await flow.browser.go(url(flow.challengePath)));
    expect(tokens.claims()).toMatchObject({ acr: 'urn:nyckel:acr:mfa', amr: ['pwd', 'swk', 'user', 'mfa'] });
  });

  test('a subscription the push service says is gone is dropped; the app sends a new one and pushes reach it', async () => {
    const { user, device } = await userWithPhone();
    push.unsubscribe(device.subscriber!.subscription.endpoint);
    const first = await pushSignIn(user.email!);
    const stored = async () =>
      ((await nyckel.db.prisma.factorEnrolment.findUniqueOrThrow({ where: { id: device.deviceId } })).data as { subscription: unknown }).subscription;
    expect(await stored()).toBeNull();
    // Listed when the app opens, although no push arrived.
    expect((await device.pending()).requests.map((r) => r.challengeId)).toEqual([first.challengeId]);

    expect((await device.resubscribe(push)).status).toBe(200);
    expect(await stored()).toEqual(device.subscriber!.subscription);
    const again = await first.browser.go(url(`/interaction/${first.uid}/mfa/push`));
    const second = flows.pushPage(again);
    const request = await device.nextRequest(second.challengeId);
    expect((await device.answer(request, { decision: 'approve', number: second.number, pin: PIN })).status).toBe(200);
    // A subscription from someone without the device key is refused.
    const forged = await fetch(url('/authenticator/api/subscription'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: device.deviceId, time: Date.now(), subscription: device.subscriber!.subscription, signature: 'A'.repeat(86) }),
    });
    expect(forged.status).toBe(401);
  });
});
