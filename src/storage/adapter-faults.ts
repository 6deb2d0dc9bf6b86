import Provider, { errors, type AdapterConstructor, type AdapterFactory, type KoaContextWithOIDC } from 'oidc-provider';
import { isStorageUnavailable, STORAGE_RETRY_AFTER_SECONDS } from './unavailable.ts';

/**
 * oidc-provider answers any error it did not make itself with 500 server_error. A store that cannot
 * be reached is instead an OAuth temporarily_unavailable with 503 (and Retry-After): the client may
 * simply retry.
 */
export function temporarilyUnavailable(cause: unknown): errors.OIDCProviderError {
  const error = new errors.OIDCProviderError(503, 'temporarily_unavailable', { cause });
  // oidc-provider shows a 5xx error as server_error unless it is exposed.
  error.expose = true;
  error.error_description = 'the service is temporarily unavailable; try again in a moment';
  // At the authorization endpoint: a page the user can reload (resuming the same request) rather
  // than ending the sign-in with an error at the app.
  error.allow_redirect = false;
  // Inside oidc-provider's own request handling its context is at hand (Provider.ctx, not in its
  // types); elsewhere it is undefined and Nyckel's error handling sets the header.
  (Provider as unknown as { ctx?: KoaContextWithOIDC }).ctx?.set('Retry-After', String(STORAGE_RETRY_AFTER_SECONDS));
  return error;
}

/** Runs work for oidc-provider (a hook such as findAccount), a store outage becoming a 503. */
export async function storageFaultsAs503<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw isStorageUnavailable(error) ? temporarilyUnavailable(error) : error;
  }
}

function isConstructor(adapter: AdapterConstructor | AdapterFactory): adapter is AdapterConstructor {
  // As oidc-provider decides: arrow functions have no prototype and are called, the rest constructed.
  return typeof adapter.prototype === 'object' && adapter.prototype !== null;
}

/** The same oidc-provider adapter, its store outages answered 503 temporarily_unavailable. */
export function unavailableAs503(adapter: AdapterConstructor | AdapterFactory): AdapterFactory {
  return (model: string) => {
    const inner = isConstructor(adapter) ? new adapter(model) : adapter(model);
    return new Proxy(inner, {
      get(target, property) {
        const value: unknown = Reflect.get(target, property, target);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => storageFaultsAs503(async (): Promise<unknown> => (value as (...a: unknown[]) => unknown).apply(target, args));
      },
    });
  };
}
