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
