import type { EventEmitter } from 'node:events';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Metrics } from './metrics.ts';

/**
 * What oidc-provider issues, counted from its events: a token it stores emits `<kind>.saved`, one it
 * does not store (a JWT access token) `<kind>.issued`, once per token either way. ID tokens have no
 * event of their own; they are counted from the token endpoint's response (`grant.success`).
 */
const tokenEvents: Record<string, string> = {
  'access_token.saved': 'access_token',
  'access_token.issued': 'access_token',
  'client_credentials.saved': 'client_credentials',
  'client_credentials.issued': 'client_credentials',
  'refresh_token.saved': 'refresh_token',
  'authorization_code.saved': 'authorization_code',
};

export function observeProvider(provider: Provider, metrics: Metrics): void {
  const events: EventEmitter = provider;
  for (const [event, kind] of Object.entries(tokenEvents)) events.on(event, () => metrics.tokenIssued(kind));
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    if ((ctx.body as { id_token?: unknown } | undefined)?.id_token) metrics.tokenIssued('id_token');
  });
}
