import { noticeAddressOf } from '../accounts/notice-address.ts';
import fs from 'node:fs';
import path from 'node:path';
import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import type { z } from 'zod';
import type { AuditLog } from '../accounts/audit.ts';
import type { Settings } from '../config/settings.ts';
import { enqueueMail, type MailToEnqueue } from '../delivery/dispatcher.ts';
import {
  approveRequest,
  PushDevices,
  registerRequest,
  signedDeviceRequest,
  subscriptionUpdate,
  transferRequest,
  type DeviceOutcome,
} from '../factors/push/devices.ts';
import type { FailureLock } from '../factors/shared/failure-lock.ts';
import { challengeTopic } from '../factors/shared/challenges.ts';
import type { Signals } from '../storage/signals.ts';
import { biometricRegistration } from '../factors/push/biometric.ts';
import { interactionsDir, translator } from '../i18n/i18n.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { qrSvgDataUrl } from '../web/shared/qr.ts';
import type { Locale } from '../accounts/accounts.ts';
import type { UnsignedMail } from '../branding/mail-branding.ts';

export interface AuthenticatorDependencies {
  prisma: PrismaClient;
  box: SecretBox;
  lock: FailureLock;
  settings: Settings;
  audit: AuditLog;
  /** Starts sending queued mail now. */
  kickMail: () => void;
  /** Adds who sent a mail and how to reach support (src/branding/mail-branding.ts). */
  signMail: (mail: UnsignedMail) => MailToEnqueue;
  /** Wakes the sign-in page waiting for this phone's answer, on whichever node it waits. */
  signals?: Signals;
}

export const AUTHENTICATOR_PATH = '/authenticator';

/** The files of the web app, served under /authenticator/ so that the service worker's scope is the app's. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'strings.js': 'text/javascript; charset=utf-8',
  'device.js': 'text/javascript; charset=utf-8',
  'requests.js': 'text/javascript; charset=utf-8',
  'qr.js': 'text/javascript; charset=utf-8',
  'phone.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'sw.js': 'text/javascript; charset=utf-8',
  'manifest.webmanifest': 'application/manifest+json; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

/** A JSON body checked against `schema`; a clear 4xx (JSON) otherwise. */
async function readBody<T extends z.ZodType>(json: Middleware, ctx: Context, schema: T): Promise<z.output<T> | undefined> {
  if (!ctx.is('application/json')) {
    respond(ctx, { ok: false, status: 415, error: 'json_required' });
    return undefined;
  }
  try {
    await json(ctx, async () => {});
  } catch (error) {
    respond(ctx, { ok: false, status: (error as { status?: number }).status === 413 ? 413 : 400, error: 'invalid_json' });
    return undefined;
  }
  const parsed = schema.safeParse((ctx.request as unknown as { body?: unknown }).body);
  if (!parsed.success) {
    respond(ctx, { ok: false, status: 400, error: 'invalid_input' });
    return undefined;
  }
  return parsed.data;
}

function respond(ctx: Context, outcome: DeviceOutcome<unknown>, okStatus = 200) {
  ctx.set('Cache-Control', 'no-store');
  if (outcome.ok) {
    ctx.status = okStatus;
    ctx.body = outcome.value;
    return;
  }
  if (outcome.retryAfterSeconds) ctx.set('Retry-After', String(outcome.retryAfterSeconds));
  ctx.status = outcome.status;
  ctx.body = {
    error: outcome.error,
    ...(outcome.attemptsLeft !== undefined ? { attemptsLeft: outcome.attemptsLeft } : {}),
    ...(outcome.retryAfterSeconds ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
  };
}

/** The installable app's own files (its page, manifest, service worker, icon). */
function appFileRoutes(router: Router): void {
  const dir = path.join(interactionsDir, 'authenticator');
  const files = new Map(Object.keys(FILES).map((name) => [name, fs.readFileSync(path.join(dir, name))]));

  const serve = (name: string) => (ctx: Context) => {
    ctx.type = FILES[name];
    // Short: a new version reaches the phones soon; the service worker keeps the app usable offline.
    ctx.set('Cache-Control', 'no-cache');
    if (name === 'sw.js') ctx.set('Service-Worker-Allowed', `${AUTHENTICATOR_PATH}/`);
    ctx.body = files.get(name);
  };

  // The router matches both with and without the slash; only the slash keeps the service worker's scope.
  const index = serve('index.html');
  router.get(AUTHENTICATOR_PATH, (ctx) => {
    if (ctx.path.endsWith('/')) return index(ctx);
    ctx.status = 301;
    ctx.redirect(`${AUTHENTICATOR_PATH}/`);
  });
  for (const name of Object.keys(FILES)) router.get(`${AUTHENTICATOR_PATH}/${name}`, serve(name));
}

/**
 * Nyckel Authenticator: the installable web app at /authenticator/ (interactions/authenticator/) and
 * its JSON API. No cookies and no CSRF: every request is authorised by what it carries (a single-use
 * registration token, or the device key's signature), so a page elsewhere gains nothing by sending one.
 */
export function authenticatorRoutes(deps: AuthenticatorDependencies): Router {
  const devices = new PushDevices(deps);
  const router = new Router();
  const json = bodyParser({ enableTypes: ['json'], jsonLimit: '16kb', encoding: 'utf-8' });
  appFileRoutes(router);

  const body = <T extends z.ZodType>(ctx: Context, schema: T) => readBody(json, ctx, schema);

  const auditContext = (ctx: Context) => ({ ip: ctx.ip, userAgent: ctx.get('user-agent') });

  const api = `${AUTHENTICATOR_PATH}/api`;
  const noStore = async (ctx: Context, next: Next) => {
    ctx.set('Cache-Control', 'no-store');
    await next();
  };

  router.get(`${api}/config`, noStore, async (ctx) => {
    ctx.body = { vapidPublicKey: (await devices.vapidKeys()).publicKey };
  });

  /** A phone registers (token from the account page's QR code, or from the old phone when moving). */
  router.post(`${api}/devices`, async (ctx) => {
    const input = await body(ctx, registerRequest);
    if (!input) return;
    const outcome = await devices.register(input);
    if (outcome.ok) {
      const { userId, deviceId, moved, name } = outcome.value;
      await deps.audit.record(moved ? 'push.device_moved' : 'push.device_registered', { userId, data: { device: deviceId, name }, ...auditContext(ctx) });
      return respond(ctx, { ok: true, value: { deviceId, qrSecret: outcome.value.qrSecret, name, moved } }, 201);
    }
    respond(ctx, outcome);
  });

  /** The phone's answer to a push request: approve (number + PIN proof) or deny (possibly "not me"). */
  router.post(`${api}/approve`, async (ctx) => {
    const input = await body(ctx, approveRequest);
    if (!input) return;
    const outcome = await devices.answer(input);
    if (!outcome.ok) {
      const device = await devices.device(input.deviceId);
      if (device)
        await deps.audit.record('push.refused', {
          userId: device.userId,
          data: { device: device.id, reason: outcome.error, challenge: input.challengeId },
          ...auditContext(ctx),
        });
      return respond(ctx, outcome);
    }
    const { userId, deviceId, decision, notMe, client } = outcome.value;
    await deps.signals?.notify(challengeTopic(input.challengeId));
    await deps.audit.record(decision === 'approve' ? 'push.approved' : 'push.denied', {
      userId,
      data: { device: deviceId, challenge: input.challengeId, notMe },
      ...auditContext(ctx),
    });
    if (decision === 'deny' && notMe) {
      await deps.audit.record('push.reported', { userId, data: { device: deviceId, challenge: input.challengeId, client }, ...auditContext(ctx) });
      await mailNotMe(userId, client);
    }
    respond(ctx, { ok: true, value: { status: decision === 'approve' ? 'approved' : 'denied' } });
  });

  router.post(`${api}/pending`, async (ctx) => {
    const input = await body(ctx, signedDeviceRequest);
    if (input) respond(ctx, await devices.pending(input));
  });

  /** From the old phone: a token for the QR code the new phone scans (the registration moves). */
  router.post(`${api}/transfer`, async (ctx) => {
    const input = await body(ctx, transferRequest);
    if (!input) return;
    const outcome = await devices.newTransferToken(input);
    if (!outcome.ok) return respond(ctx, outcome);
    const url = `${deps.settings.issuer}${AUTHENTICATOR_PATH}/#transfer=${outcome.value.token}`;
    respond(ctx, { ok: true, value: { url, qr: await qrSvgDataUrl(url) } });
  });

  /** Fingerprint or face instead of the PIN: creation options (signed, with the PIN), then the credential. */
  router.post(`${api}/biometric/options`, async (ctx) => {
    const input = await body(ctx, transferRequest);
    if (input) respond(ctx, await devices.biometricOptions(input));
  });

  router.post(`${api}/biometric`, async (ctx) => {
    const input = await body(ctx, biometricRegistration);
    if (!input) return;
    const outcome = await devices.biometricRegister(input);
    if (outcome.ok)
      await deps.audit.record('push.biometric_added', { userId: outcome.value.userId, data: { device: outcome.value.deviceId }, ...auditContext(ctx) });
    respond(ctx, outcome.ok ? { ok: true, value: { deviceId: outcome.value.deviceId } } : outcome, 201);
  });

  router.post(`${api}/subscription`, async (ctx) => {
    const input = await body(ctx, subscriptionUpdate);
    if (input) respond(ctx, await devices.updateSubscription(input));
  });

  /** "That was not me": the user is told by mail what to do (change the password). */
  async function mailNotMe(userId: string, client: string) {
    const user = await deps.prisma.user.findUnique({ where: { id: userId } });
    if (!user) return;
    const locale = (['sv', 'da', 'en'].includes(user.locale ?? '') ? user.locale : deps.settings.defaultLocale) as Locale;
    const t = translator(locale);
    const text = [
      t('mail.greeting'),
      '',
      t('factors.push.not_me_mail', { client }),
      '',
      t('account.notice.when', { when: new Date().toISOString().replace('T', ' ').slice(0, 16) + ' UTC' }),
    ].join('\n');
    const to = await noticeAddressOf(deps.prisma, user);
    if (!to) return;
    await enqueueMail(deps.prisma, deps.box, deps.signMail({ to, subject: t('factors.push.not_me_subject'), text, purpose: 'push-not-me', locale }));
    deps.kickMail();
  }

  return router;
}
