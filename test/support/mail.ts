import type { PrismaClient } from '../../src/storage/db.ts';

/** The newest mail queued for an address (the dev outbox keeps every mail in the deliveries table). */
export async function latestMail(prisma: PrismaClient, to: string) {
  const delivery = await prisma.delivery.findFirst({ where: { recipient: to }, orderBy: { createdAt: 'desc' } });
  if (!delivery) throw new Error(`no mail to ${to}`);
  return delivery;
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
