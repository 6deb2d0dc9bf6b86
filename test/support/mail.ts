import { newMasterKey, SecretBox } from '../../src/security/crypto.ts';
import { openDeliveryBody } from '../../src/delivery/sealed-body.ts';
import type { Delivery } from '../../src/generated/prisma/client.ts';
import type { PrismaClient } from '../../src/storage/db.ts';

/**
 * Delivery bodies are sealed with the master key (src/delivery/sealed-body.ts). The master key of
 * each database a test reads mail from is registered here, by the database handle: startTestNyckel
 * does it; a test that starts Nyckel as a process registers the key it gave the process.
 */
const boxes = new WeakMap<PrismaClient, SecretBox>();

export function registerMasterKey(prisma: PrismaClient, key: SecretBox | string) {
  boxes.set(prisma, typeof key === 'string' ? new SecretBox(Buffer.from(key, 'base64url')) : key);
}

/** A SecretBox on a fresh master key, for suites that write deliveries without a Nyckel. */
export function testBox(): SecretBox {
  return new SecretBox(Buffer.from(newMasterKey(), 'base64url'));
}

export type OpenedDelivery = Delivery & { subject: string | null; text: string; html: string | null };

/** A delivery row with its body opened (an empty text when the body is gone: sent by a real transport). */
export function openDelivery(prisma: PrismaClient, delivery: Delivery): OpenedDelivery {
  const box = boxes.get(prisma);
  if (!box) throw new Error('no master key registered for this database (registerMasterKey)');
  const body = openDeliveryBody(box, delivery);
  return { ...delivery, subject: body?.subject ?? null, text: body?.text ?? '', html: body?.html ?? null };
}

/** The newest mail queued for an address (the dev outbox keeps every mail in the deliveries table). */
export async function latestMail(prisma: PrismaClient, to: string): Promise<OpenedDelivery> {
  const delivery = await prisma.delivery.findFirst({ where: { recipient: to, channel: 'email' }, orderBy: { createdAt: 'desc' } });
  if (!delivery) throw new Error(`no mail to ${to}`);
  return openDelivery(prisma, delivery);
}

/** The texts the dev SMS outbox holds for a number (E.164), newest first. */
export async function smsTo(prisma: PrismaClient, e164: string): Promise<OpenedDelivery[]> {
  const rows = await prisma.delivery.findMany({ where: { channel: 'sms', recipient: e164 }, orderBy: { createdAt: 'desc' } });
  return rows.map((row) => openDelivery(prisma, row));
}

export function codeIn(text: string): string {
  const match = /(?:^|\s)(\d{6})(?:\s|$)/m.exec(text);
  if (!match) throw new Error(`no code in mail:\n${text}`);
  return match[1];
}

export function linkIn(text: string): string {
  const match = /(https?:\/\/\S+\/interaction\/\S+\/link\/\S+)/.exec(text);
  if (!match) throw new Error(`no link in mail:\n${text}`);
  return match[1];
}
