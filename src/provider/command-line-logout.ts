import Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.ts';
import type { RevokeElsewhere } from '../accounts/revoke-access.ts';
import { readClientsFile } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { loadCookieKeys, loadSigningKeys } from '../keys/signing-keys.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { createOidcAdapter } from '../storage/oidc-adapter.ts';
import { OidcAtRest } from '../storage/oidc-at-rest.ts';
import { backchannelLogoutNotices, type LogoutWarn } from './logout-notices.ts';
import { providerConfiguration } from './provider.ts';

/** The command line's provider answers no request, so it renders no page. */
const noPages = {
  logoutConfirmation: refuse,
  loggedOut: refuse,
  protocolError: refuse,
};

function refuse(): Promise<void> {
  return Promise.reject(new Error('the command line serves no pages'));
}

/**
 * Back-channel logout for the command line (`users disable`, `users set-password`, `reset-factors`),
 * which runs no provider: one is built, as the nodes build theirs (the clients file, the signing
 * keys in the database), the first time an ended session has apps to tell, only to sign and send the
 * logout tokens. A failure to build it is a warning, like a failed delivery.
 */
export function commandLineLogoutNotices(
  deps: { settings: Settings; prisma: PrismaClient; box: SecretBox; accounts: () => Accounts },
  warn: LogoutWarn,
): RevokeElsewhere {
  let built: Promise<Provider> | undefined;
  let provider: Provider | undefined;
  const notices = backchannelLogoutNotices(() => provider!, warn);
  const build = async () => {
    const { settings, prisma, box } = deps;
    const [jwks, cookieKeys] = await Promise.all([loadSigningKeys(prisma, box), loadCookieKeys(prisma, box)]);
    const adapter = createOidcAdapter(prisma, { atRest: new OidcAtRest(box) });
    const clients = readClientsFile(settings.clientsFile);
    return new Provider(
      settings.issuer,
      providerConfiguration({ settings, prisma, accounts: deps.accounts(), clients, jwks, cookieKeys, pages: noPages, adapter }),
    );
  };
  return async (revoked) => {
    if (!revoked.endedSessions.some((session) => Object.keys(session.authorizations).length > 0)) return;
    try {
      provider ??= await (built ??= build());
    } catch (error) {
      warn({ err: error }, 'back-channel logout could not be sent: the clients file or the signing keys could not be read');
      return;
    }
    await notices(revoked);
  };
}
