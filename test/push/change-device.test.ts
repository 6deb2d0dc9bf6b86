import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, decodeEntities, textOf } from '../support/browser.ts';
import { DeviceSimulator } from '../support/device-simulator.ts';
import { FakePushService } from '../support/fake-push-service.ts';
import { codeIn, latestMail } from '../support/mail.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { PIN, callbackStop, pushFlows } from './helpers.ts';

let nyckel: TestNyckel;
let push: FakePushService;

beforeAll(async () => {
  push = await new FakePushService().start();
  nyckel = await startTestNyckel({ env: { NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS: 'true' } });
});
afterAll(async () => {
  await nyckel?.stop();
  await push?.stop();
});

const flows = pushFlows(() => ({ nyckel, push }));
const { url, userWithPhone, pushSignIn, passwordStep, tokensFrom } = flows;

describe('moving Nyckel Authenticator to a new phone', () => {
  test('the old phone shows a QR code (PIN needed); the new phone takes over the registration and the old one stops working at once', async () => {
    const { user, device: old } = await userWithPhone();
    expect(await old.transferLink('1397')).toMatchObject({ status: 401, body: { error: 'wrong_pin' } });
    const transfer = await old.transferLink(PIN);
    expect(transfer.status).toBe(200);
    expect(transfer.url).toMatch(/\/authenticator\/#transfer=[A-Za-z0-9_-]{43}$/);
    expect((transfer.body as { qr?: string }).qr).toMatch(/^data:image\/svg\+xml;base64,/);

    const moved = await DeviceSimulator.register(transfer.url!, { pin: '8642', push });
    expect(moved).toMatchObject({ status: 201, body: { moved: true, name: 'My work phone', deviceId: old.deviceId } });
    const fresh = moved.device!;
    expect(await DeviceSimulator.register(transfer.url!, { pin: '8642', push })).toMatchObject({ status: 410 });
    const rows = await nyckel.db.prisma.factorEnrolment.findMany({ where: { userId: user.id, type: 'push' } });
    expect(rows).toHaveLength(1);
    const events = (await nyckel.db.prisma.auditEvent.findMany({ where: { userId: user.id } })).map((e) => e.type);
    expect(events).toContain('push.device_moved');

    // The old phone: no list, no approvals (its key is no longer the registration's), no QR codes.
    expect((await old.pending()).status).toBe(401);
    const flow = await pushSignIn(user.email!);
    const request = await fresh.nextRequest(flow.challengeId);
    expect(await old.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).toMatchObject({ status: 401, body: { error: 'bad_signature' } });
    expect((await old.answer(request, { decision: 'deny', notMe: true })).status).toBe(401);
    expect(old.inbox).toEqual([]);
    expect((await fresh.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).body.error).toBe('wrong_pin');
    expect((await fresh.answer(request, { decision: 'approve', number: flow.number, pin: '8642' })).status).toBe(200);
    expect((await tokensFrom(flow.config, flow.start, await flow.browser.go(url(flow.challengePath)))).claims()?.amr).toEqual(['pwd', 'swk', 'pin', 'mfa']);

    const qr = await passwordStep(user.email!);
    const page = await qr.browser.go(url(`/interaction/${qr.uid}/mfa/app-qr`));
    const text = decodeEntities(/<code id="app-qr-text">([^<]+)<\/code>/.exec(page.html)![1]);
    expect((await qr.browser.submit(page, '/verify', { code: await old.qrCode(text, PIN) })).status).toBe(401);
    expect((await qr.browser.submit(page, '/verify', { code: await fresh.qrCode(text, '8642') })).url).toContain('code=');
  });

  test('without the old phone: "delete all my devices" after an email code; the old phone stops working; a new one is added', async () => {
    const { user, device: old } = await userWithPhone();
    await nyckel.db.prisma.userEmail.updateMany({ where: { userId: user.id }, data: { verifiedAt: new Date() } });
    const browser = new FormBrowser(callbackStop);
    let page = await browser.go(url('/account/lost-device'));
    page = await browser.submit(page, '/login', { email: user.email!, password: TEST_PASSWORD });
    const target = /name="target"[^>]*value="([0-9a-f-]{36})"/.exec(page.html)![1];
    const codePage = await browser.submit(page, '/account/lost-device/start', { target });
    // The button says what it does.
    expect(codePage.html).toMatch(/<button type="submit" class="primary">Delete all my devices<\/button>/);
    const done = await browser.submit(codePage, '/verify', { code: codeIn((await latestMail(nyckel.db.prisma, user.email!)).text) });
    expect(textOf(done.html)).toContain('All your devices are deleted');
    expect((await old.pending()).status).toBe(401);

    page = await browser.go(url('/account/add/push'));
    page = await browser.submit(page, '/account/add/push', { label: 'New phone' });
    const link = decodeEntities(/id="device-link" href="([^"]+)"/.exec(page.html)![1]);
    const fresh = (await DeviceSimulator.register(link, { pin: '8642', push })).device!;
    await browser.submit(await browser.go(page.url), '/done', {});
    const flow = await pushSignIn(user.email!);
    const request = await fresh.nextRequest(flow.challengeId);
    expect((await old.answer(request, { decision: 'approve', number: flow.number, pin: PIN })).status).toBe(401);
    expect((await fresh.answer(request, { decision: 'approve', number: flow.number, pin: '8642' })).status).toBe(200);
    expect((await flow.browser.go(url(flow.challengePath))).url).toContain('code=');
  });
});
