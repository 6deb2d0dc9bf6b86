import { errors, type Adapter, type AdapterFactory, type AdapterPayload } from 'oidc-provider';
import type { OnceDestroyable } from '../storage/oidc-adapter.ts';

/** The adapters of `adapter`, with one method of `model`'s replaced by what `replace` makes from its adapter. */
function replacing<K extends keyof Adapter>(adapter: AdapterFactory, model: string, method: K, replace: (target: Adapter) => Adapter[K]): AdapterFactory {
  return (name: string) => {
    const inner = adapter(name);
    if (name !== model) return inner;
    const replacement = replace(inner);
    return new Proxy(inner, {
      get: (target, property) => (property === method ? replacement : (Reflect.get(target, property, target) as unknown)),
    });
  };
}

/**
 * oidc-provider resumes an authorization request by reading its interaction and destroying it, which
 * two parallel resumes can both do (a sign-in answer submitted twice, each answer followed): each
 * would issue a code. Destroying the interaction is made the deciding step: the resume that finds
 * nothing left to destroy is refused as an expired request.
 */
export function singleUseResume(adapter: AdapterFactory): AdapterFactory {
  return replacing(adapter, 'Interaction', 'destroy', (target) => async (id: string) => {
    const once = (target as Adapter & Partial<OnceDestroyable>).destroyOnce;
    if (!once) return target.destroy(id);
    if (!(await once.call(target, id))) throw new errors.SessionNotFound('the sign-in was already resumed');
  });
}

/** Refuses a device code confirmed a second time: the page says the code has already been used (device-pages.ts). */
class DeviceCodeAlreadyConfirmed extends errors.InvalidRequest {
  constructor() {
    super('code has already been used');
    this.name = 'AlreadyUsedError';
  }
}

/**
 * oidc-provider marks a confirmed device code `inFlight`, or a cancelled one with an error, by reading
 * it and saving it again, which parallel answers on the code page can all do: two confirmations would
 * each go on to a sign-in, and a cancellation saved while a confirmation goes on would be overwritten
 * (or overwrite it) after its page said "cancelled". Saving either mark is made the deciding step: the
 * answer whose claim (an atomic counter, one per code) is already taken is refused.
 */
export function singleUseDeviceConfirmation(adapter: AdapterFactory, claim: (id: string) => Promise<boolean>): AdapterFactory {
  return replacing(adapter, 'DeviceCode', 'upsert', (target) => async (id: string, payload: AdapterPayload, expiresIn: number) => {
    const confirming = payload.inFlight === true && !payload.accountId && !payload.error;
    // A cancellation on the code page; one on the sign-in page after confirming is inFlight already.
    const cancelling = payload.inFlight !== true && !payload.accountId && Boolean(payload.error);
    if ((confirming || cancelling) && !(await claim(id))) throw new DeviceCodeAlreadyConfirmed();
    return target.upsert(id, payload, expiresIn);
  });
}
