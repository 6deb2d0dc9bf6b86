import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import pino from 'pino';
import { loadSettings, SettingsError } from '../../src/config/settings.ts';
import { deliveryStatus, enqueueMail } from '../../src/delivery/dispatcher.ts';
import { OutboxTransport } from '../../src/delivery/outbox-transport.ts';
import { devOutboxRoutes, linkifyParts } from '../../src/web/outbox-routes.ts';
import { createMailTransport } from '../../src/delivery/transports.ts';
import type { PrismaClient } from '../../src/storage/db.ts';
import type { PageRenderer } from '../../src/server/pages.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';
import { testBox } from '../support/mail.ts';
import { waitFor } from './helpers.ts';

interface OutboxEntry {
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string | null;
  purpose: string;
  status: string;
  createdAt: string;
}

describe('dev outbox on a running Nyckel (transport outbox, the default outside production)', () => {
  let nyckel: TestNyckel;
  beforeAll(async () => {
    nyckel = await startTestNyckel();
  });
  afterAll(async () => {
    await nyckel.stop();
  });

  async function send(mail: Parameters<typeof enqueueMail>[2]) {
    const row = await enqueueMail(nyckel.db.prisma, nyckel.box, mail);
    nyckel.mail.dispatcher.kick();
    await waitFor(async () => (await deliveryStatus(nyckel.db.prisma, row.id))?.status === 'sent', 'the outbox to take the mail');
    return row;
  }

  test('mail is "sent" to the outbox and listed by /dev/outbox.json, newest first, filtered by ?to=', async () => {
    expect(nyckel.mail.transport.name).toBe('outbox');
    const first = await send({ to: 'Anna@Example.se', subject: 'Din kod', text: 'Koden är 111222', purpose: 'email-code' });
    const second = await send({
      to: 'bo@example.dk',
      subject: 'Log ind',
      text: 'Klik: http://localhost/verify?t=1',
      html: '<p>Klik</p>',
      purpose: 'email-link',
    });
    expect(await deliveryStatus(nyckel.db.prisma, first.id)).toMatchObject({ status: 'sent', transport: 'outbox', attempts: 1 });

    const all = await fetch(`${nyckel.url}/dev/outbox.json`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toMatch(/^application\/json/);
    expect(all.headers.get('cache-control')).toBe('no-store');
    const entries = (await all.json()) as OutboxEntry[];
    expect(entries.map((e) => e.id)).toEqual([second.id, first.id]);
    expect(entries[0]).toEqual({
      id: second.id,
      to: 'bo@example.dk',
      subject: 'Log ind',
      text: 'Klik: http://localhost/verify?t=1',
      html: '<p>Klik</p>',
      purpose: 'email-link',
      status: 'sent',
      createdAt: second.createdAt.toISOString(),
    });

    const anna = (await (await fetch(`${nyckel.url}/dev/outbox.json?to=${encodeURIComponent('anna@example.se')}`)).json()) as OutboxEntry[];
    expect(anna.map((e) => [e.id, e.text, e.html])).toEqual([[first.id, 'Koden är 111222', null]]);
    const nobody = (await (await fetch(`${nyckel.url}/dev/outbox.json?to=nobody@example.se`)).json()) as OutboxEntry[];
    expect(nobody).toEqual([]);
  });

  test('/dev/outbox shows the mail as HTML, everything escaped, URLs in the text as links', async () => {
    await send({
      to: 'eve@example.se',
      subject: '<script>alert("x")</script> åäö',
      text: 'Hej <b>Eve</b> & co.\nOpen https://nyckel.test/l?token=abc&x=1. Or javascript:alert(1)',
      purpose: 'email-link',
    });
    const response = await fetch(`${nyckel.url}/dev/outbox`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(response.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await response.text();
    expect(html).toContain('<h1>Dev outbox</h1>');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; åäö');
    expect(html).toContain(
      'Hej &lt;b&gt;Eve&lt;/b&gt; &amp; co.\nOpen <a href="https://nyckel.test/l?token=abc&amp;x=1">https://nyckel.test/l?token=abc&amp;x=1</a>. Or javascript:alert(1)</pre>',
    );
    expect(html).not.toContain('href="javascript');
    expect(html).toContain('eve@example.se');
    expect(html).toContain('email-link');
    expect(html).toMatch(/<dt>Status<\/dt><dd>sent/);
    // Newest first: this mail comes before the ones of the previous test.
    expect(html.indexOf('eve@example.se')).toBeLessThan(html.indexOf('bo@example.dk'));
  });
});

describe('the outbox is refused in production and absent with other transports', () => {
  test('settings refuse NYCKEL_MAIL_TRANSPORT=outbox in production; the transport refuses too', () => {
    expect(() => loadSettings({ NODE_ENV: 'production', NYCKEL_MAIL_TRANSPORT: 'outbox', NYCKEL_MASTER_KEY: 'a'.repeat(43) })).toThrow(SettingsError);
    expect(() => new OutboxTransport({ production: true })).toThrow(/refused when NODE_ENV=production/);
    const dev = loadSettings({ NODE_ENV: 'development' });
    expect(dev.mail.transport).toBe('outbox');
    expect(() => createMailTransport({ ...dev, production: true })).toThrow(SettingsError);
    expect(createMailTransport(dev).name).toBe('outbox');
  });

  test('devOutboxRoutes gives no router in production or for a real transport', () => {
    const deps = { prisma: {} as PrismaClient, box: testBox(), pages: {} as PageRenderer };
    const outbox = new OutboxTransport({ production: false });
    expect(devOutboxRoutes({ ...deps, production: false, transport: outbox })).toBeDefined();
    expect(devOutboxRoutes({ ...deps, production: true, transport: outbox })).toBeUndefined();
    expect(devOutboxRoutes({ ...deps, production: false, transport: { name: 'smtp', send: async () => {} } })).toBeUndefined();
  });

  test('a Nyckel mailing through SMTP (and texting through Twilio) has no /dev/outbox', async () => {
    // SMS kept in the outbox would bring the pages back (see test/sms/transport.test.ts).
    const twilio = { NYCKEL_SMS_TRANSPORT: 'twilio', TWILIO_ACCOUNT_SID: `AC${'0'.repeat(32)}`, TWILIO_AUTH_TOKEN: 'unused', TWILIO_FROM: '+46700000001' };
    const nyckel = await startTestNyckel({ env: { NYCKEL_MAIL_TRANSPORT: 'smtp', NYCKEL_SMTP_URL: 'smtp://127.0.0.1:9', ...twilio } });
    try {
      expect(nyckel.mail.transport.name).toBe('smtp');
      expect((await fetch(`${nyckel.url}/dev/outbox.json`)).status).toBe(404);
      expect((await fetch(`${nyckel.url}/dev/outbox`)).status).toBe(404);
      expect((await fetch(`${nyckel.url}/healthz`)).status).toBe(200);
    } finally {
      await nyckel.stop();
    }
  });

  test('a production Nyckel (SendGrid) has no /dev/outbox', async () => {
    const nyckel = await startTestNyckel({
      env: { NODE_ENV: 'production', SENDGRID_API_KEY: 'SG.unused', NYCKEL_SENDGRID_BASE_URL: 'http://127.0.0.1:9' },
      logger: pino({ level: 'silent' }),
    });
    try {
      expect(nyckel.settings.production).toBe(true);
      expect(nyckel.mail.transport.name).toBe('sendgrid');
      expect((await fetch(`${nyckel.url}/dev/outbox.json`)).status).toBe(404);
      expect((await fetch(`${nyckel.url}/dev/outbox`)).status).toBe(404);
    } finally {
      await nyckel.stop();
    }
  });
});

describe('linkifyParts', () => {
  test('splits out http(s) URLs without trailing punctuation; nothing else becomes a link', () => {
    expect(linkifyParts('Go to https://a.test/x?y=1&z=2. Then (see http://b.test/p) or ftp://c.test, javascript:alert(1)')).toEqual([
      { text: 'Go to ' },
      { text: 'https://a.test/x?y=1&z=2', url: 'https://a.test/x?y=1&z=2' },
      { text: '. Then (see ' },
      { text: 'http://b.test/p', url: 'http://b.test/p' },
      { text: ') or ftp://c.test, javascript:alert(1)' },
    ]);
    expect(linkifyParts('no links')).toEqual([{ text: 'no links' }]);
    expect(linkifyParts('https://w.test/wiki/Foo_(bar)')).toEqual([{ text: 'https://w.test/wiki/Foo_(bar)', url: 'https://w.test/wiki/Foo_(bar)' }]);
  });
});
