import { createRequire } from 'node:module';
import path from 'node:path';
import { webauthnPage } from '../shared/pages/webauthn.ts';
import type { FactorScript, FactorUi } from '../ui-contract.ts';

/** The UMD bundle @simplewebauthn/browser ships (its package exports only the module entry points). */
function simpleWebAuthnBrowserBundle(): FactorScript {
  const entry = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  const file = path.join(entry.slice(0, entry.lastIndexOf(`${path.sep}script${path.sep}`)), 'dist', 'bundle', 'index.umd.min.js');
  return { name: 'simplewebauthn-browser.js', file };
}

/**
 * A passkey: the WebAuthn ceremony page. passkey.js runs the ceremony with the browser bundle of
 * SimpleWebAuthn (window.SimpleWebAuthnBrowser); the account pages and the passkey sign-in use them too.
 */
export const passkeyUi: FactorUi = {
  id: 'passkey',
  page: webauthnPage({ template: 'passkey/mfa-passkey' }),
  scripts: [{ name: 'passkey.js' }, simpleWebAuthnBrowserBundle()],
  failures: {},
  account: { label: 'account.add_passkey', via: { href: '/account/add/passkey' } },
};
