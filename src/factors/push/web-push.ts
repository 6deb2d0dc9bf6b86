import type { Settings } from '../../config/settings.ts';
import type { SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { PushSubscriptionJson } from './protocol.ts';

const VAPID_SECRET = 'vapid-keys';

/** web-push (and its crypto and HTTP dependencies) is imported when push is first used, not at start. */
const webPush = () => import('web-push').then((module) => module.default);

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

/**
 * The VAPID key pair: from the settings when given, else made once and kept sealed in server_secrets
 * (the first node to start wins; the others read its keys).
 */
export async function loadVapidKeys(prisma: PrismaClient, box: SecretBox, settings: Settings): Promise<VapidKeys> {
  const subject = settings.push.vapid.subject ?? `mailto:${/<([^>]+)>/.exec(settings.mail.from)?.[1] ?? settings.mail.from}`;
  if (settings.push.vapid.publicKey && settings.push.vapid.privateKey) {
    return { publicKey: settings.push.vapid.publicKey, privateKey: settings.push.vapid.privateKey, subject };
  }
  const existing = await prisma.serverSecret.findUnique({ where: { name: VAPID_SECRET } });
  if (existing) {
    const keys = JSON.parse(box.open('server-secret', existing.value, VAPID_SECRET).toString('utf8')) as { publicKey: string; privateKey: string };
    return { ...keys, subject };
  }
  const fresh = (await webPush()).generateVAPIDKeys();
  const value = box.seal('server-secret', JSON.stringify(fresh), VAPID_SECRET);
  await prisma.serverSecret.createMany({ data: [{ name: VAPID_SECRET, value }], skipDuplicates: true });
  return loadVapidKeys(prisma, box, settings);
}

/** Whether a subscription endpoint may be used: https, or http to loopback where the settings allow it (tests). */
export function acceptableEndpoint(endpoint: string, settings: Settings): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && settings.push.allowHttpEndpoints && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
}

export type PushResult = 'sent' | 'gone' | 'failed';

/**
 * Sends one Web Push message: web-push encrypts it (aes128gcm, RFC 8291) and signs the VAPID JWT
 * (RFC 8292); the request itself goes out with fetch, which also reaches the loopback fake push
 * service of the tests over http. 404/410 mean the subscription is gone.
 */
export async function sendPush(vapid: VapidKeys, subscription: PushSubscriptionJson, payload: string, ttlSeconds: number): Promise<PushResult> {
  const request = (await webPush()).generateRequestDetails(subscription, payload, {
    vapidDetails: vapid,
    TTL: ttlSeconds,
    urgency: 'high',
    contentEncoding: 'aes128gcm',
  });
  try {
    const response = await fetch(request.endpoint, {
      method: request.method,
      headers: request.headers as Record<string, string>,
      body: request.body ? new Uint8Array(request.body) : undefined,
      signal: AbortSignal.timeout(5000),
    });
    await response.arrayBuffer().catch(() => undefined);
    if (response.status === 404 || response.status === 410) return 'gone';
    return response.ok ? 'sent' : 'failed';
  } catch {
    return 'failed';
  }
}
