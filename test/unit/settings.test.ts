import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { loadSettings, SettingsError, settingsSchema } from '../../src/config/settings.ts';
import { projectRoot } from '../support/process.ts';
import { withInstalledMethods } from '../../src/factors/installed-methods.ts';
import { Factors, installedFactors } from '../../src/factors/registry.ts';

describe('settings', () => {
  test('every setting is documented in .env.example', () => {
    const documented = fs.readFileSync(path.join(projectRoot, '.env.example'), 'utf8');
    const missing = Object.keys(settingsSchema.in.shape).filter((key) => !new RegExp(`^#? ?${key}=`, 'm').test(documented));
    expect(missing).toEqual([]);
  });

  test('defaults give a working development configuration', () => {
    const settings = loadSettings({});
    expect(settings).toMatchObject({ port: 3000, issuer: 'http://localhost:3000', demo: true, production: false, defaultLocale: 'en' });
    expect(settings.dataDir).toBe(path.resolve('./data'));
  });

  test('every problem is named; production needs a master key and turns the demo off', () => {
    try {
      loadSettings({ PORT: 'x', ISSUER: 'not a url', NYCKEL_TRUST_PROXY: 'maybe' });
      throw new Error('should fail');
    } catch (error) {
      expect(error).toBeInstanceOf(SettingsError);
      const problems = (error as SettingsError).problems.join('\n');
      expect(problems).toMatch(/^PORT: /m);
      expect(problems).toMatch(/^ISSUER: /m);
      expect(problems).toMatch(/^NYCKEL_TRUST_PROXY: /m);
    }
    expect(() => loadSettings({ NODE_ENV: 'production' })).toThrow(/NYCKEL_MASTER_KEY: required/);
    expect(() => loadSettings({ NODE_ENV: 'production', NYCKEL_MASTER_KEY: 'A'.repeat(43) })).toThrow(/dev outbox is refused/);
    const production = loadSettings({ NODE_ENV: 'production', NYCKEL_MASTER_KEY: 'A'.repeat(43), NYCKEL_SMTP_URL: 'smtp://mail.example:587' });
    expect(production.demo).toBe(false);
    expect(production.mail.transport).toBe('smtp');
    expect(loadSettings({ SENDGRID_API_KEY: 'SG.x' }).mail.transport).toBe('sendgrid');
    // Method ids are checked against the installed factors when Nyckel starts.
    expect(() => withInstalledMethods(loadSettings({ NYCKEL_MFA_METHODS: 'totp,carrier-pigeon' }), new Factors())).toThrow(
      /unknown method\(s\) carrier-pigeon/,
    );
    expect(withInstalledMethods(loadSettings({}), new Factors()).mfa.methods).toEqual(installedFactors.map((factor) => factor.id));
    expect(loadSettings({ ISSUER: 'https://id.example.se/' }).issuer).toBe('https://id.example.se');
  });

  test('/metrics in production: refused without a token when asked for, off by default, on behind a token', () => {
    const production = { NODE_ENV: 'production', NYCKEL_MASTER_KEY: 'A'.repeat(43), NYCKEL_SMTP_URL: 'smtp://mail.example:587' };
    expect(() => loadSettings({ ...production, NYCKEL_METRICS: 'true' })).toThrow(
      /NYCKEL_METRICS_TOKEN: required when NODE_ENV=production and NYCKEL_METRICS=true/,
    );
    expect(loadSettings(production).metrics).toEqual({ enabled: false, token: undefined });
    expect(loadSettings({ ...production, NYCKEL_METRICS_TOKEN: 'scrape-token-0123456789' }).metrics).toEqual({
      enabled: true,
      token: 'scrape-token-0123456789',
    });
    expect(loadSettings({ ...production, NYCKEL_METRICS: 'false' }).metrics.enabled).toBe(false);
    // Outside production nothing changes: on, open unless a token is set.
    expect(loadSettings({}).metrics).toEqual({ enabled: true, token: undefined });
  });

  test('mail budgets', () => {
    expect(loadSettings({}).mail.budgets).toEqual({ perAddress: 10, perAccount: 20, perIp: 50 });
    expect(loadSettings({ NYCKEL_MAIL_BUDGET_PER_ADDRESS: '3' }).mail.budgets.perAddress).toBe(3);
    expect(() => loadSettings({ NYCKEL_MAIL_BUDGET_PER_IP: '0' })).toThrow(/NYCKEL_MAIL_BUDGET_PER_IP/);
  });
});
