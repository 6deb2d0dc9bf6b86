import { randomToken } from './security/crypto.ts';
import type { Nyckel } from './nyckel.ts';

export const DEMO_EMAIL = 'demo@nyckel.example';

/** On a fresh embedded install: one demo user, its password printed once, and the demo client shown. */
export async function ensureDemoUser(nyckel: Nyckel): Promise<void> {
  const { accounts, settings, clients } = nyckel;
  const existing = await accounts.findByEmail(DEMO_EMAIL);
  const lines = ['', `Nyckel is running at ${settings.issuer}`, `  discovery: ${settings.issuer}/.well-known/openid-configuration`];
  const demoClient = clients.get('demo');
  if (demoClient) {
    lines.push(`  demo client: client_id "demo" (${demoClient.name}), redirect_uri ${demoClient.redirect_uris[0]}`);
  }
  if (existing) {
    lines.push(`  demo user: ${DEMO_EMAIL} (its password was printed at first start; set a new one with`);
    lines.push(`    echo 'a new password' | npx nyckel users set-password ${DEMO_EMAIL} --password-stdin)`);
  } else {
    const password = `demo-${randomToken(9)}`;
    await accounts.create({ email: DEMO_EMAIL, password, name: 'Demo User', locale: 'en' }, { actor: 'demo-setup' });
    lines.push(`  demo user: ${DEMO_EMAIL}  password: ${password}   (printed this once)`);
  }
  if (demoClient) {
    lines.push(`  try it: open ${settings.issuer}/demo`);
  }
  lines.push('');
  console.log(lines.join('\n'));
}
