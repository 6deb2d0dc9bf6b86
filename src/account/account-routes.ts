import Router from '@koa/router';
import { csrfProtection } from '../security/csrf.ts';
import { formBody } from '../web/shared/forms.ts';
import { createAccountKit, type AccountRouteDependencies } from './account-kit.ts';
import { deviceRoutes } from './device-routes.ts';
import { registerOverviewRoutes } from './overview-routes.ts';
import { registerAppRoutes } from './app-routes.ts';
import { registerPasskeyAndBankIdRoutes } from './passkey-bankid-routes.ts';
import { registerContactRoutes } from './contact-routes.ts';
import { registerSecurityRoutes } from './security-routes.ts';
import { registerLostDeviceRoutes } from './lost-device-routes.ts';
import { registerConsentRoutes } from './consent-routes.ts';
import { registerDataRoutes } from './data-routes.ts';

export type { AccountRouteDependencies } from './account-kit.ts';
export { browserName } from './browser-name.ts';

/**
 * The user's own account pages at /account: every enrolled method, adding and removing them, their
 * order, contact addresses and numbers, recovery codes, remembered browsers, other sessions and the
 * password. Any change needs a recent sign-in with the second factor (ASVS 7.5.1); every change is
 * audited and mailed to the user.
 */
export function accountRoutes(deps: AccountRouteDependencies): Router {
  const { prisma, pages } = deps;
  const router = new Router();
  const form = formBody(deps.settings.maxBodyBytes);
  router.use('/account', csrfProtection(deps.box));
  deps.signIn.routes(router);
  const kit = createAccountKit(deps);
  registerOverviewRoutes(router, deps, kit, form);
  registerAppRoutes(router, deps, kit, form);
  registerPasskeyAndBankIdRoutes(router, deps, kit, form);
  registerContactRoutes(router, deps, kit, form);
  registerSecurityRoutes(router, deps, kit, form);
  registerLostDeviceRoutes(router, deps, kit, form);
  registerConsentRoutes(router, deps, kit, form);
  registerDataRoutes(router, deps, kit, form);
  const { visit, enrolled } = kit;
  deviceRoutes(router, { visit, enrolled, form, pages, prisma, box: deps.box, settings: deps.settings, lock: deps.lock });
  return router;
}
