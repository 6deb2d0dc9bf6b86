import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';
import type { OnceDestroyable } from '../storage/oidc-adapter.ts';

/**
 * oidc-provider resumes an authorization request by reading its interaction and destroying it, which
 * two parallel resumes can both do (a sign-in answer submitted twice, each answer followed): each
 * would issue a code. Destroying the interaction is made the deciding step: the resume that finds
 * nothing left to destroy is refused as an expired request.
 */
export function singleUseResume(adapter: AdapterFactory): AdapterFactory {
  return (model: string) => {
    const inner = adapter(model);
    if (model !== 'Interaction') return inner;
    return new Proxy(inner, {
      get(target, property) {
        if (property !== 'destroy') return Reflect.get(target, property, target) as unknown;
        return async (id: string) => {
          const once = (target as Adapter & Partial<OnceDestroyable>).destroyOnce;
          if (!once) return target.destroy(id);
          if (!(await once.call(target, id))) throw new errors.SessionNotFound('the sign-in was already resumed');
        };
      },
    });
  };
}

/** Refuses a device code confirmed a second time: the page says the code has already been used (device-pages.ts). */
class DeviceCodeAlreadyConfirmed extends errors.InvalidRequest {
  constructor() {
    super('code has already been used');
    this.name = 'AlreadyUsedError';
  }
}

/**
 * oidc-provider marks a confirmed device code `inFlight` by reading it and saving it again, which two
 * parallel confirmations can both do: each would go on to a sign-in. Saving that mark is made the
 * deciding step: the confirmation whose claim (an atomic counter) is already taken is refused.
 */
export function singleUseDeviceConfirmation(adapter: AdapterFactory, claim: (id: string) => Promise<boolean>): AdapterFactory {
  return (model: string) => {
    const inner = adapter(model);
    if (model !== 'DeviceCode') return inner;
    return new Proxy(inner, {
      get(target, property) {
        if (property !== 'upsert') return Reflect.get(target, property, target) as unknown;
        return async (id: string, payload: AdapterPayload, expiresIn: number) => {
          const confirming = payload.inFlight === true && !payload.accountId && !payload.error;
          if (confirming && !(await claim(id))) throw new DeviceCodeAlreadyConfirmed();
          return target.upsert(id, payload, expiresIn);
        };
      },
    });
  };
}
