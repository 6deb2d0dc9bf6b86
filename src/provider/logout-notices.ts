import type Provider from 'oidc-provider';
import type { EndedSession, RevokeElsewhere } from '../accounts/revoke-access.ts';

/** The part of oidc-provider's Client that sends a logout token (OIDC Back-Channel Logout 1.0). */
interface LogoutClient {
  clientId: string;
  backchannelLogoutUri?: string;
  backchannelLogout(sub: string, sid: string | undefined): Promise<void>;
}

export type LogoutWarn = (details: Record<string, unknown>, message: string) => void;

/**
 * Back-channel logout for sessions Nyckel ends itself (oidc-provider sends it only at end_session):
 * "end this session" and "end my other sessions" on the account pages, a new password, a reset of the
 * second factors, an operator disabling a user. Each app of each ended session that registered a
 * backchannel_logout_uri is posted a logout token naming the session's sid for that app, as
 * end_session does. Sent after the sessions are gone, in parallel; a failure is logged and never
 * stops the sign-out (oidc-provider's request timeout bounds the wait).
 */
export function backchannelLogoutNotices(provider: () => Provider, warn: LogoutWarn): RevokeElsewhere {
  return async ({ endedSessions }) => {
    const sends = endedSessions.flatMap((session) => Object.entries(session.authorizations).map(([clientId, { sid }]) => notify(clientId, sid, session)));
    await Promise.all(sends);
  };

  async function notify(clientId: string, sid: string | undefined, session: EndedSession): Promise<void> {
    try {
      // A client no longer in the clients file is simply not told.
      const client = (await provider().Client.find(clientId)) as LogoutClient | undefined;
      if (!client?.backchannelLogoutUri) return;
      await client.backchannelLogout(session.accountId, sid);
    } catch (error) {
      warn({ err: error, clientId }, 'back-channel logout failed');
    }
  }
}
