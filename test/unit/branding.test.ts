import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { Branding } from '../../src/branding/brand.ts';
import { signMail, supportLine } from '../../src/branding/mail-branding.ts';
import { ClientsFileError, parseClientsFile, type ClientsFile } from '../../src/clients/clients-file.ts';
import { loadSettings, SettingsError } from '../../src/config/settings.ts';
import { addressOf, senderOf } from '../../src/delivery/transport.ts';
import { brandFiles } from '../support/brand-files.ts';

let files: Awaited<ReturnType<typeof brandFiles>>;
beforeAll(async () => {
  files = await brandFiles();
});
afterAll(() => files?.remove());

function settingsProblems(env: Record<string, string>): string {
  try {
    loadSettings(env);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as SettingsError).problems.join('\n');
  }
  throw new Error('expected the settings to be refused');
}

function brandingOf(env: Record<string, string>, clients: ClientsFile = { clients: [], resources: [] }) {
  return new Branding(loadSettings(env).brand, { get: (id) => clients.clients.find((c) => c.client_id === id), file: clients });
}

function logoProblem(bytes: string | Buffer): string {
  const file = path.join(files.dir, `bad-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(file, bytes);
  try {
    brandingOf({ NYCKEL_BRAND_LOGO: file });
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as SettingsError).problems.join('\n');
  }
  throw new Error('expected the logo to be refused');
}

const clientsYaml = (extra: string) => `
clients:
  - client_id: portal
    name: Portal
    token_endpoint_auth_method: none
    redirect_uris: [https://portal.example/cb]
${extra}
`;

describe('installation brand settings', () => {
  test('defaults stay neutral: the plain name Nyckel, no logo, no colours, no support contact', () => {
    const branding = brandingOf({});
    expect(branding.name).toBe('Nyckel');
    expect(branding.page(undefined)).toEqual({
      name: 'Nyckel',
      logo: undefined,
      stylesheet: branding.stylesheet.path,
      clientLogo: undefined,
      support: undefined,
    });
    expect(branding.stylesheet.css.toString()).not.toContain('--');
    // The display name in NYCKEL_MAIL_FROM stays when no brand name is set.
    expect(branding.senderName(undefined)).toBeUndefined();
  });

  test('colours become custom properties in a stylesheet whose URL names its content; #abc is #aabbcc', () => {
    const branding = brandingOf({ NYCKEL_BRAND_PRIMARY_COLOR: '#06A', NYCKEL_BRAND_ACCENT_COLOR: '#ffcc00' });
    const css = branding.stylesheet.css.toString();
    expect(css).toContain('--accent: #0066aa;');
    expect(css).toContain('--brand-accent: #ffcc00;');
    expect(branding.stylesheet.path).toMatch(/^\/assets\/brand-[A-Za-z0-9_-]{16}\.css$/);
    expect(brandingOf({ NYCKEL_BRAND_PRIMARY_COLOR: '#123456' }).stylesheet.path).not.toBe(branding.stylesheet.path);
    expect(branding.asset(branding.stylesheet.path)?.type).toBe('text/css; charset=utf-8');
  });

  test('a colour that is not hex, or too light for links on white, stops start-up with the setting named', () => {
    expect(settingsProblems({ NYCKEL_BRAND_PRIMARY_COLOR: 'blue' })).toMatch(/NYCKEL_BRAND_PRIMARY_COLOR: must be a hex colour/);
    expect(settingsProblems({ NYCKEL_BRAND_ACCENT_COLOR: '#12345' })).toMatch(/NYCKEL_BRAND_ACCENT_COLOR: must be a hex colour/);
    expect(settingsProblems({ NYCKEL_BRAND_PRIMARY_COLOR: '#ffcc00' })).toMatch(/NYCKEL_BRAND_PRIMARY_COLOR: must have a contrast of at least 4\.5:1/);
    expect(settingsProblems({ NYCKEL_SUPPORT_EMAIL: 'not an address' })).toMatch(/NYCKEL_SUPPORT_EMAIL: must be an email address/);
    expect(settingsProblems({ NYCKEL_SUPPORT_URL: 'ftp://example.se' })).toMatch(/NYCKEL_SUPPORT_URL/);
    expect(settingsProblems({ NYCKEL_BRAND_NAME: 'A <b>' })).toMatch(/NYCKEL_BRAND_NAME/);
  });

  test('the brand name is also the authenticator issuer and passkey name unless they are set apart', () => {
    expect(loadSettings({ NYCKEL_BRAND_NAME: 'IDEP.WEB' })).toMatchObject({ totp: { issuer: 'IDEP.WEB' }, webauthn: { rpName: 'IDEP.WEB' } });
    expect(loadSettings({ NYCKEL_BRAND_NAME: 'IDEP.WEB', NYCKEL_TOTP_ISSUER: 'IDEP' })).toMatchObject({ totp: { issuer: 'IDEP' } });
    expect(loadSettings({})).toMatchObject({ totp: { issuer: 'Nyckel' }, webauthn: { rpName: 'Nyckel' } });
  });

  test('an SVG or PNG logo is read, typed by its content and served under a hashed URL', () => {
    const svg = brandingOf({ NYCKEL_BRAND_LOGO: files.svg });
    expect(svg.logo?.path).toMatch(/^\/assets\/logo-[A-Za-z0-9_-]{16}\.svg$/);
    expect(svg.asset(svg.logo!.path)).toEqual({ type: 'image/svg+xml', bytes: fs.readFileSync(files.svg) });
    const png = brandingOf({ NYCKEL_BRAND_LOGO: files.png });
    expect(png.logo?.path).toMatch(/^\/assets\/logo-[A-Za-z0-9_-]{16}\.png$/);
    expect(png.asset(png.logo!.path)?.type).toBe('image/png');
    expect(png.asset('/assets/logo-AAAAAAAAAAAAAAAA.png')).toBeUndefined();
  });

  test('a bad logo file stops start-up with the reason', () => {
    expect(() => brandingOf({ NYCKEL_BRAND_LOGO: path.join(files.dir, 'missing.svg') })).toThrow(/NYCKEL_BRAND_LOGO: .*missing\.svg cannot be read: ENOENT/);
    expect(logoProblem('GIF89a not a logo')).toMatch(/NYCKEL_BRAND_LOGO: .* is neither a PNG .* nor an SVG/);
    expect(logoProblem(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]))).toMatch(/neither a PNG nor a UTF-8 SVG/);
    expect(logoProblem('')).toMatch(/is empty/);
    expect(logoProblem(`<svg xmlns="http://www.w3.org/2000/svg">${' '.repeat(300 * 1024)}</svg>`)).toMatch(/at most 262144/);
    expect(logoProblem('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')).toMatch(/scripts, event handlers/);
    expect(logoProblem('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>')).toMatch(/scripts, event handlers/);
    expect(logoProblem('<svg xmlns="http://www.w3.org/2000/svg"><image href="https://cdn.example/x.png"/></svg>')).toMatch(/refers to other files/);
    expect(logoProblem(Buffer.concat([fs.readFileSync(files.png).subarray(0, 8), Buffer.from('short')]))).toMatch(/truncated PNG/);
  });
});

describe('client brand in the clients file', () => {
  test('client_name, logo_file (relative to the file), support_contact and mail_sender_name', () => {
    const file = parseClientsFile(
      clientsYaml(`    client_name: Statistikportalen
    logo_file: client.png
    support_contact: { email: help@portal.example, text: "Växeln, 08-123 45 67" }
    mail_sender_name: Statistikportalen`),
      path.join(files.dir, 'clients.yaml'),
    );
    const [portal] = file.clients;
    expect(portal.logo?.type).toBe('image/png');
    const branding = brandingOf({ NYCKEL_BRAND_NAME: 'IDEP.WEB', NYCKEL_SUPPORT_EMAIL: 'support@idep.example' }, file);
    expect(branding.clientName('portal')).toBe('Statistikportalen');
    expect(branding.page('portal')).toMatchObject({ name: 'IDEP.WEB', clientLogo: portal.logo!.path, support: { email: 'help@portal.example' } });
    expect(branding.asset(portal.logo!.path)?.type).toBe('image/png');
    expect(branding.senderName('portal')).toBe('Statistikportalen');
    // Elsewhere, the installation's.
    expect(branding.page(undefined)).toMatchObject({ clientLogo: undefined, support: { email: 'support@idep.example' } });
    expect(branding.senderName(undefined)).toBe('IDEP.WEB');
  });

  test('a support contact may be one line of text', () => {
    const [portal] = parseClientsFile(clientsYaml('    support_contact: IT-support, 08-123 45 67'), 'clients.yaml').clients;
    expect(portal.support_contact).toEqual({ text: 'IT-support, 08-123 45 67' });
  });

  test('a bad logo_file or sender name is a problem of the file that names the client', () => {
    const refused = (extra: string, file = path.join(files.dir, 'clients.yaml')) => {
      try {
        parseClientsFile(clientsYaml(extra), file);
      } catch (error) {
        expect(error).toBeInstanceOf(ClientsFileError);
        return (error as ClientsFileError).problems.join('\n');
      }
      throw new Error('expected a refusal');
    };
    expect(refused('    logo_file: clients.yaml.txt')).toMatch(/clients\[0\] \(client_id "portal"\)\.logo_file: .*cannot be read/);
    fs.writeFileSync(path.join(files.dir, 'notes.txt'), 'not a logo');
    expect(refused('    logo_file: notes.txt')).toMatch(/clients\[0\] \(client_id "portal"\)\.logo_file: .*notes\.txt is neither a PNG/);
    expect(refused('    mail_sender_name: "Portal <x@y>"')).toMatch(/mail_sender_name: must not contain/);
    expect(refused('    support_contact: {}')).toMatch(/support_contact/);
  });
});

describe('signed mail', () => {
  const mail = { to: 'anna@example.se', subject: 'Your code', text: 'Hello,\n\nYour code is 123456.\n', purpose: 'email-code', locale: 'sv' as const };

  test('every mail says who sent it and how to reach support, in the reader’s language', () => {
    const branding = brandingOf({
      NYCKEL_BRAND_NAME: 'IDEP.WEB',
      NYCKEL_SUPPORT_TEXT: 'Växeln, 08-123 45 67',
      NYCKEL_SUPPORT_URL: 'https://idep.example/hjalp',
    });
    const signed = signMail(branding, mail);
    expect(signed.fromName).toBe('IDEP.WEB');
    expect(signed.text).toBe(
      'Hello,\n\nYour code is 123456.\n\n— IDEP.WEB. Det här mejlet skickades automatiskt; svara inte på det.\nBehöver du hjälp? Kontakta Växeln, 08-123 45 67 · https://idep.example/hjalp',
    );
    expect(signed).not.toHaveProperty('locale');
  });

  test('the HTML gets the same footer, escaped, with the contact as links', () => {
    const branding = brandingOf({ NYCKEL_BRAND_NAME: 'A&B', NYCKEL_SUPPORT_EMAIL: 'help@ab.example' });
    const signed = signMail(branding, { ...mail, locale: 'en', html: '<html><body><p>Hi</p></body></html>' });
    expect(signed.html).toContain('<p>— A&amp;B. This mail was sent automatically; please do not reply.</p>');
    expect(signed.html).toContain('<p>Need help? Contact <span class="support"><a href="mailto:help@ab.example">help@ab.example</a></span></p>\n</body>');
  });

  test('without a support contact there is no support line, and the From keeps the name of NYCKEL_MAIL_FROM', () => {
    const signed = signMail(brandingOf({}), { ...mail, locale: 'da' });
    expect(signed.text.endsWith('— Nyckel. Denne e-mail er sendt automatisk; svar venligst ikke på den.')).toBe(true);
    expect(signed).not.toHaveProperty('fromName');
  });

  test('a client’s sender name and support contact replace the installation’s', () => {
    const file = parseClientsFile(clientsYaml('    mail_sender_name: Portalen\n    support_contact: Portal desk'), 'clients.yaml');
    const branding = brandingOf({ NYCKEL_BRAND_NAME: 'IDEP.WEB', NYCKEL_SUPPORT_EMAIL: 'support@idep.example' }, file);
    const signed = signMail(branding, { ...mail, locale: 'en', clientId: 'portal' });
    expect(signed.fromName).toBe('Portalen');
    expect(signed.text).toContain('— IDEP.WEB.');
    expect(signed.text).toContain('Need help? Contact Portal desk');
    expect(signed.text).not.toContain('support@idep.example');
    expect(supportLine({ email: 'a@b.se', url: 'https://b.se' })).toBe('a@b.se · https://b.se');
  });

  test('the transports’ From: the address of NYCKEL_MAIL_FROM under the chosen name', () => {
    expect(addressOf('Nyckel <no-reply@idep.example>')).toBe('no-reply@idep.example');
    expect(addressOf('no-reply@idep.example')).toBe('no-reply@idep.example');
    expect(senderOf({ from: 'Nyckel <no-reply@idep.example>', fromName: 'IDEP.WEB' })).toEqual({ name: 'IDEP.WEB', address: 'no-reply@idep.example' });
    expect(senderOf({ from: 'Nyckel <no-reply@idep.example>' })).toBe('Nyckel <no-reply@idep.example>');
  });
});
