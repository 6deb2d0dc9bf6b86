import { CONTROL_CHARACTERS } from '../factors/shared/labels.ts';
import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import type { Locale } from '../accounts/accounts.ts';
import { AUTHENTICATOR_PATH } from '../authenticator/routes.ts';
import type { FactorId } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { NyckelError } from '../errors.ts';
import type { ChallengeContext } from '../factors/contract.ts';
import { PushDevices } from '../factors/push/devices.ts';
import type { FailureLock } from '../factors/shared/failure-lock.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import type { SecretBox } from '../security/crypto.ts';
import { readForm } from '../web/shared/forms.ts';
import type { PageRenderer } from '../server/pages.ts';
import { qrDataUrl } from '../web/shared/qr.ts';
import type { PrismaClient } from '../storage/db.ts';

interface DeviceVisit {
  locale: Locale;
  factorCtx: ChallengeContext;
}

export interface DeviceRouteHelpers<V extends DeviceVisit> {
  /** The signed-in visit of the account pages (account-routes.ts). */
  visit: (ctx: Context, options: { change?: boolean }) => Promise<V | undefined>;
  /** Finishes adding a method: audit, mail, primary, recovery codes (account-routes.ts). */
  enrolled(ctx: Context, v: V, factor: FactorId, label: string): Promise<void>;
  form: Middleware;
  pages: PageRenderer;
  prisma: PrismaClient;
  box: SecretBox;
  settings: Settings;
  lock: FailureLock;
}

const nameForm = z.object({ _csrf: z.string().max(200), label: z.string().max(200).default('') });
const plainForm = z.object({ _csrf: z.string().max(200) });

/**
 * "Add a mobile device" on the account pages: the user names the phone, scans the QR code with it
 * (or opens the link on it) and chooses a PIN in Nyckel Authenticator; this page polls until the phone
 * has registered, then the user confirms here (in the signed-in browser) and the phone works.
 */
export function deviceRoutes<V extends DeviceVisit>(router: Router, helpers: DeviceRouteHelpers<V>): void {
  const { visit, pages, form } = helpers;
  const devices = new PushDevices({ prisma: helpers.prisma, box: helpers.box, lock: helpers.lock, settings: helpers.settings });
  const base = '/account/add/push';

  const renderName = (ctx: Context, v: V, error?: string, status = 200) =>
    pages.html(ctx, 'account-device', v.locale, { csrfToken: ctx.state.csrfToken as string, step: 'name', error }, status);

  router.get(base, async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) renderName(ctx, v);
  });

  router.post(base, form, async (ctx) => {
    const input = readForm(ctx, nameForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const label = input.label.replace(CONTROL_CHARACTERS, '').trim();
    if (label.length === 0 || label.length > 60) return renderName(ctx, v, translator(v.locale)('account.label_invalid'), 400);
    const { challengeId } = await devices.newEnrolmentToken(v.factorCtx, label);
    ctx.status = 303;
    ctx.redirect(`${base}/${challengeId}`);
  });

  /** The QR code while the phone has not registered; "Finish" once it has. */
  router.get(`${base}/:id`, async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const state = await devices.enrolmentState(v.factorCtx, ctx.params.id);
    if (state.state === 'expired') throw new NyckelError('session_expired');
    const token = state.state === 'waiting' ? await devices.enrolmentToken(v.factorCtx, ctx.params.id) : undefined;
    const link = token ? `${helpers.settings.issuer}${AUTHENTICATOR_PATH}/#enrol=${token}` : undefined;
    pages.html(ctx, 'account-device', v.locale, {
      csrfToken: ctx.state.csrfToken as string,
      step: state.state,
      label: state.label,
      path: `${base}/${ctx.params.id}`,
      link,
      qr: link ? await qrDataUrl(link) : undefined,
    });
  });

  router.get(`${base}/:id/status`, async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: (await devices.enrolmentState(v.factorCtx, ctx.params.id)).state };
  });

  router.post(`${base}/:id/done`, form, async (ctx) => {
    const input = readForm(ctx, plainForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const device = await devices.confirmEnrolment(v.factorCtx, ctx.params.id);
    if (!device) throw new NyckelError('session_expired');
    await helpers.enrolled(ctx, v, 'push', device.label);
  });
}
