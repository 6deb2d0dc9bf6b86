import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { FormBrowser, findForm } from '../support/browser.ts';
import { startTestNyckel, TEST_PASSWORD, type TestNyckel } from '../support/nyckel.ts';
import { relyingParty, startAuthorization } from '../support/relying-party.ts';

let nyckel: TestNyckel;
const email = 'garbage@scb.example';

beforeAll(async () => {
  nyckel = await startTestNyckel();
  const user = await nyckel.accounts.create({ email, password: TEST_PASSWORD });
  await nyckel.db.prisma.userPhone.create({ data: { userId: user.id, e164: '+46701234572', verifiedAt: new Date() } });
});
afterAll(() => nyckel?.stop());

describe('second-factor pages answer garbage with a 4xx, never a 500', () => {
  test('every endpoint, mid sign-in, with wrong ids, factors, codes and bodies', async () => {
    const config = await relyingParty(nyckel.url, 'selfservice');
    const start = await startAuthorization(config, { redirect_uri: 'http://localhost:4000/selfservice-cb', scope: 'openid' });
    const browser = new FormBrowser((url) => url.port === '4000');
    let page = await browser.go(start.url.toString());
    page = await browser.submit(page, '/login', { email, password: TEST_PASSWORD });
    // After the password: the code page of the code sent at once; the interaction's own path is the base.
    const base = /^.*\/interaction\/[^/?]+/.exec(page.url)![0];
    const csrf = findForm(page.html, '/abort').hidden._csrf;
    const form = (body: Record<string, string>) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: csrf, ...body }).toString(),
    });
    const uuid = '00000000-0000-4000-8000-000000000000';
    const cases: Array<[string, RequestInit?]> = [
      ['/mfa/carrier-pigeon'],
      ['/mfa/sms'],
      ['/mfa/%00%ff'],
      ['/mfa/email-code/challenge/not-a-uuid'],
      [`/mfa/email-code/challenge/${uuid}`],
      [`/mfa/email-code/challenge/${uuid}/status`],
      ['/mfa/enrol/totp/challenge/nope'],
      ['/mfa/email-code/start', form({ target: 'nope' })],
      ['/mfa/email-code/start', form({ typed: 'x'.repeat(400) })],
      ['/mfa/email-code/start', form({})],
      ['/mfa/carrier-pigeon/start', form({ target: 'x' })],
      [`/mfa/email-code/challenge/${uuid}/verify`, form({ code: '123456' })],
      [`/mfa/email-code/challenge/${uuid}/verify`, form({ code: 'DROP TABLE' })],
      [`/mfa/email-code/challenge/${uuid}/resend`, form({})],
      ['/mfa/enrol/email-code/start', form({ target: 'nope' })],
      [`/mfa/enrol/totp/challenge/${uuid}/verify`, form({ code: '1' })],
      ['/mfa/continue', form({})],
      ['/mfa/email-code/start', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"typed":1}' }],
      ['/mfa/email-code/start', form({ target: 'a', _csrf: 'forged' })],
      [`/link/${uuid}/token`],
      [`/link/${uuid}/token`, form({})],
      ['/link/garbage/garbage'],
    ];
    for (const [path, init] of cases) {
      const response = await browser.request(`${base}${path}`, init);
      expect([path, response.status < 500]).toEqual([path, true]);
      expect(response.html).not.toMatch(/\n\s+at |stack/i);
    }
    // Nothing was lost: the sign-in still goes on.
    const again = await browser.go(`${base}/mfa`);
    expect(again.status).toBe(200);
  });
});
