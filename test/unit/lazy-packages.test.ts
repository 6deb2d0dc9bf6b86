import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, test } from '@jest/globals';
import { build } from 'esbuild';
import { buildOptions } from '../../scripts/build-options.mjs';
import { loadSettings } from '../../src/config/settings.ts';
import { createMailTransport, LazyMailTransport } from '../../src/delivery/transports.ts';
import { projectRoot } from '../support/process.ts';

// Packages a start does not load: each is imported where it is first needed.
const LAZY = [
  'nodemailer',
  '@sendgrid/mail',
  '@sendgrid/client',
  'web-push',
  'twilio',
  'ioredis',
  '@peculiar/asn1-schema',
  '@peculiar/x509',
  '@zxcvbn-ts/language-common',
  '@zxcvbn-ts/dictionary-compression',
  // Only for an embedded database (src/storage/pglite-db.ts).
  '@electric-sql/pglite',
  'pglite-prisma-adapter',
  // At the first QR code drawn, the first sign-in to the account pages or to the demo.
  'qrcode',
  'openid-client',
];

test('starting the server loads no mail, SMS or push provider SDK, no Redis client, no WebAuthn parsers, no common-password list, no PGlite, no QR encoder, no OIDC client', () => {
  const out = execFileSync(process.execPath, ['--import', 'tsx', 'test/support/loaded-packages.ts', ...LAZY, 'oidc-provider'], {
    cwd: projectRoot,
    encoding: 'utf8',
  });
  const loaded = JSON.parse(out.trim().split('\n').at(-1)!) as string[];
  // The check sees what is loaded, ES modules included.
  expect(loaded).toContain('oidc-provider');
  for (const name of LAZY) expect(loaded).not.toContain(name);
}, 60_000);

test('the built server (npm run build) loads them on first use too: none is imported by main.js or the chunks it imports', async () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-build-'));
  try {
    await build({ ...buildOptions, absWorkingDir: projectRoot, outdir, sourcemap: false, logLevel: 'silent' });
    const imported = staticPackages(path.join(outdir, 'main.js'));
    expect(imported).toContain('oidc-provider');
    for (const name of LAZY) expect(imported).not.toContain(name);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}, 60_000);

/** The packages an ES module of the build imports statically, itself or through the chunks it imports. */
function staticPackages(entry: string): string[] {
  const packages = new Set<string>();
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const [, specifier] of fs.readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;"']*?["']([^"']+)["'];?$/gm)) {
      if (specifier.startsWith('.')) visit(path.resolve(path.dirname(file), specifier));
      else if (!specifier.startsWith('node:'))
        packages.add(
          specifier
            .split('/')
            .slice(0, specifier.startsWith('@') ? 2 : 1)
            .join('/'),
        );
    }
  };
  visit(entry);
  return [...packages];
}

test('an SMTP or SendGrid transport imports its SDK at the first send, not when it is made', () => {
  const smtp = createMailTransport(loadSettings({ NODE_ENV: 'test', NYCKEL_MAIL_TRANSPORT: 'smtp', NYCKEL_SMTP_URL: 'smtp://127.0.0.1:2525' }));
  expect(smtp).toBeInstanceOf(LazyMailTransport);
  expect(smtp.name).toBe('smtp');
  expect((smtp as LazyMailTransport).loaded).toBe(false);
  const sendgrid = createMailTransport(loadSettings({ NODE_ENV: 'test', SENDGRID_API_KEY: 'SG.fake-key.Zm9vYmFyYmF6' }));
  expect(sendgrid.name).toBe('sendgrid');
  expect((sendgrid as LazyMailTransport).loaded).toBe(false);
});
