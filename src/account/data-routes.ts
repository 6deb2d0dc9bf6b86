import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { eraseUser, scheduleDeletion } from '../accounts/erase.ts';
import { noticeAddressOf } from '../accounts/notice-address.ts';
import { exportPersonalData, personalDataFileName } from '../accounts/personal-data.ts';
import { translator } from '../i18n/i18n.ts';
import { assertCsrf } from '../security/csrf.ts';
import { readForm } from '../web/shared/forms.ts';
import { csrfField, type AccountKit, type AccountRouteDependencies, type Visit } from './account-kit.ts';

const deleteForm = z.object({ _csrf: csrfField, confirm: z.string().max(10).optional() });

/** The reason kept (pseudonymised) in the audit log when a user deletes their own account. */
export const OWN_REQUEST_REASON = 'the user deleted the account on the account pages';

/**
 * "Download my data" (GDPR articles 15 and 20) and "Delete my account" (article 17). Both need a
 * recent sign-in with the second factor, as every change does (the visit's `change`). Deleting
 * disables the account at once and erases it when NYCKEL_ACCOUNT_DELETION_GRACE_DAYS have passed (the
 * sweep); meanwhile only an operator can cancel it, by enabling the account again, since the account
 * can no longer sign in. With 0 days it is erased at once.
 */
export function registerDataRoutes(router: Router, deps: AccountRouteDependencies, kit: AccountKit, form: Middleware): void {
  const { prisma, pages, audit, sessions } = deps;
  const { visit, auditContext, dateText } = kit;
  const graceDays = deps.settings.account.deletionGraceDays;
  const { erasure } = deps;

  router.get('/account/data', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const data = await exportPersonalData(prisma, v.user);
    await audit.record('user.data_exported', { userId: v.user.id, data: { actor: 'user' }, ...auditContext(ctx) });
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Content-Disposition', `attachment; filename="${personalDataFileName(v.user)}"`);
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = JSON.stringify(data, null, 2);
  });

  const renderConfirm = (ctx: Context, v: Visit, error?: string) => {
    const dueDate = dateText(v.locale, new Date(Date.now() + graceDays * 86_400_000));
    pages.html(ctx, 'account-delete', v.locale, { csrfToken: ctx.state.csrfToken as string, graceDays, dueDate, error }, error ? 400 : 200);
  };

  router.get('/account/delete', async (ctx) => {
    const v = await visit(ctx, { change: true });
    if (v) renderConfirm(ctx, v);
  });

  router.post('/account/delete', form, async (ctx) => {
    const input = readForm(ctx, deleteForm);
    assertCsrf(ctx, input._csrf);
    const v = await visit(ctx, { change: true });
    if (!v) return;
    const t = translator(v.locale);
    if (input.confirm !== 'yes') return renderConfirm(ctx, v, t('account.delete_confirm_missing'));
    // A user with a user name only has no address to be told at.
    const mailed = graceDays > 0 && (await noticeAddressOf(prisma, v.user)) !== undefined;
    if (graceDays === 0) {
      await eraseUser(erasure, v.user.id, { actor: 'user', reason: OWN_REQUEST_REASON });
    } else {
      const dueAt = new Date(Date.now() + graceDays * 86_400_000);
      await scheduleDeletion(erasure, v.user.id, dueAt, { actor: 'user', ...auditContext(ctx) });
      await deps.notifier.notify(v.user, v.locale, 'deletion_scheduled', { date: dateText(v.locale, dueAt) ?? dueAt.toISOString() });
    }
    sessions.clear(ctx);
    const title = t(graceDays === 0 ? 'account.deleted_title' : 'account.deletion_scheduled_title');
    const scheduled = [t('account.deletion_scheduled', { days: graceDays }), ...(mailed ? [t('account.deletion_mailed')] : [])].join(' ');
    const message = graceDays === 0 ? t('account.deleted') : scheduled;
    pages.html(ctx, 'message', v.locale, { title, message, showSupport: graceDays > 0 });
  });
}
