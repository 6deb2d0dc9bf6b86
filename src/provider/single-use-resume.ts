import { errors, type Adapter, type AdapterFactory } from 'oidc-provider';
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
