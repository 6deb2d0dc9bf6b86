import type { SecretBox } from '../../security/crypto.ts';
import type { PrismaClient } from '../../storage/db.ts';
import type { Transaction } from '../deps.ts';
import { maskPersonalNumber } from './personal-number.ts';

export const BANKID_TYPE = 'bankid';
const SEAL_PURPOSE = 'bankid-personal-number';
const MAC_PURPOSE = 'bankid-personal-number';

/** What an enrolment row keeps besides the sealed number: a keyed hash to compare with, and the masked form. */
export interface BindingData {
  mac: string;
  masked: string;
}

export function personalNumberMac(box: SecretBox, twelveDigits: string): string {
  return box.mac(MAC_PURPOSE, twelveDigits);
}

/**
 * Binds a (validated, twelve-digit) personal number to a user: one BankID enrolment per user, the
 * number sealed with SecretBox (bound to the row id), a keyed hash for comparing, and its masked form.
 * Replaces an earlier binding.
 */
export async function bindPersonalNumber(db: PrismaClient | Transaction, box: SecretBox, userId: string, twelveDigits: string) {
  const data: BindingData = { mac: personalNumberMac(box, twelveDigits), masked: maskPersonalNumber(twelveDigits) };
  await db.factorEnrolment.deleteMany({ where: { userId, type: BANKID_TYPE } });
  const row = await db.factorEnrolment.create({ data: { userId, type: BANKID_TYPE, label: data.masked, position: 0, confirmed: true, data: data as object } });
  return db.factorEnrolment.update({ where: { id: row.id }, data: { secret: box.seal(SEAL_PURPOSE, twelveDigits, row.id) } });
}

export async function unbindPersonalNumber(db: PrismaClient | Transaction, userId: string): Promise<number> {
  const { count } = await db.factorEnrolment.deleteMany({ where: { userId, type: BANKID_TYPE } });
  return count;
}

export async function bindingOf(db: PrismaClient | Transaction, userId: string): Promise<(BindingData & { id: string }) | undefined> {
  const row = await db.factorEnrolment.findFirst({ where: { userId, type: BANKID_TYPE, confirmed: true }, orderBy: { createdAt: 'desc' } });
  if (!row) return undefined;
  const data = row.data as Partial<BindingData>;
  return typeof data.mac === 'string' && typeof data.masked === 'string' ? { id: row.id, mac: data.mac, masked: data.masked } : undefined;
}
