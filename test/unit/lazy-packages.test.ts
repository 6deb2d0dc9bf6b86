import { execFileSync } from 'node:child_process';
import { expect, test } from '@jest/globals';
import { loadSettings } from '../../src/config/settings.ts';
import { createMailTransport, LazyMailTransport } from '../../src/delivery/transports.ts';
import { projectRoot } from '../support/process.ts';

test('starting the server loads no mail, SMS or push provider SDK, no Redis client, no WebAuthn parsers, no common-password list', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/support/loaded-packages.ts'], { cwd: projectRoot, encoding: 'utf8' });
  const loaded = JSON.parse(out.trim().split('\n').at(-1)!) as string[];
  for (const name of [
    'nodemailer',
    '@sendgrid/mail',
    '@sendgrid/client',
    'web-push',
    'twilio',
    'ioredis',
    '@peculiar/asn1-schema',
    '@peculiar/x509',
    '@zxcvbn-ts/language-common',
  ])
    expect(loaded).not.toContain(name);
}, 60_000);

test('an SMTP or SendGrid transport imports its SDK at the first send, not when it is made', () => {
  const smtp = createMailTransport(loadSettings({ NODE_ENV: 'test', NYCKEL_MAIL_TRANSPORT: 'smtp', NYCKEL_SMTP_URL: 'smtp://127.0.0.1:2525' }));
  expect(smtp).toBeInstanceOf(LazyMailTransport);
  expect(smtp.name).toBe('smtp');
  expect((smtp as LazyMailTransport).loaded).toBe(false);
  const sendgrid = createMailTransport(loadSettings({ NODE_ENV: 'test', SENDGRID_API_KEY: 'SG.fake-key.Zm9vYmFyYmF6' }));
  expect(sendgrid.name).toBe('sendgrid');
  expect((sendgrid as LazyMailTransport).loaded).toBe(false);
});
