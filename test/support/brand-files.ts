import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import QRCode from 'qrcode';

export const TEST_SVG_LOGO =
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40"><rect width="120" height="40" fill="#123456"/></svg>\n';

/** A folder with a plain SVG logo (logo.svg) and a real PNG (client.png), for branding tests. */
export async function brandFiles(): Promise<{ dir: string; svg: string; png: string; remove(): void }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-brand-'));
  const svg = path.join(dir, 'logo.svg');
  const png = path.join(dir, 'client.png');
  fs.writeFileSync(svg, TEST_SVG_LOGO);
  fs.writeFileSync(png, await QRCode.toBuffer('a logo', { width: 64 }));
  return { dir, svg, png, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** The installation's brand as the branding tests set it. */
export function brandEnv(files: { svg: string }): Record<string, string> {
  return {
    NYCKEL_BRAND_NAME: 'IDEP.WEB',
    NYCKEL_BRAND_LOGO: files.svg,
    NYCKEL_BRAND_PRIMARY_COLOR: '#0066aa',
    NYCKEL_BRAND_ACCENT_COLOR: '#ffcc00',
    NYCKEL_SUPPORT_EMAIL: 'support@idep.example',
    NYCKEL_SUPPORT_TEXT: 'Växeln, 08-123 45 67',
  };
}

/** Adds `branded`, a client with its own name, logo, support desk and mail sender, to a clients file. */
export function withBrandedClient(yaml: string, files: { png: string }): string {
  return yaml.replace(
    'resources:',
    `  - client_id: branded
    name: Internal portal label
    client_name: Statistikportalen
    logo_file: ${files.png}
    support_contact: { email: help@portal.example, text: Portal desk }
    mail_sender_name: Statistikportalen
    first_party: true
    token_endpoint_auth_method: none
    redirect_uris: [http://localhost:4000/branded-cb]
    scopes: [openid, email]
    mfa: { required: true, methods: [email-code] }
resources:`,
  );
}
