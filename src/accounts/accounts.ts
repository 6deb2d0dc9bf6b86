import os from 'node:os';
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { parsePhoneNumberWithError } from 'libphonenumber-js';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { User } from '../generated/prisma/client.ts';
import { Semaphore } from '../security/semaphore.ts';
import { checkPassword, normalisePassword, passwordProblemText } from './password-policy.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { databaseOnly, revokedCounts, revokeUserAccess, type RevokeGrantsElsewhere } from './revoke-access.ts';

import { supportedLocales, type Locale } from '../i18n/locales.ts';

export { supportedLocales, type Locale };

export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'is not a valid email address' }))
  .transform((value) => value.toLowerCase());

/** E.164 after parsing with libphonenumber-js; national numbers need a leading + and country code. */
export const phoneSchema = z.string().transform((value, ctx) => {
  try {
    const phone = parsePhoneNumberWithError(value.trim());
    if (!phone.isValid()) throw new Error('invalid');
    return phone.number;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not a valid phone number in international form (+46701234567)' });
    return z.NEVER;
  }
});

export interface NewUser {
  email: string;
  password: string;
  name?: string;
  phone?: string;
  locale?: Locale;
}

export interface Argon2Settings {
  memoryCost: number;
  timeCost: number;
  /** Hashes and verifications in flight at once (each holds memoryCost KiB); default: one per core. */
  maxConcurrent?: number;
}

export class Accounts {
  private readonly hashOptions;
  /** Caps argon2's memory (19 MiB a hash by default) and keeps a burst of sign-ins from queueing every core. */
  private readonly argon2Slots: Semaphore;
  private dummyHash?: Promise<string>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly audit: AuditLog,
    argon2: Argon2Settings,
    /** Where revoked grants' tokens outside the database go (Redis, when the nodes use it). */
    readonly revokeElsewhere: RevokeGrantsElsewhere = databaseOnly,
  ) {
    // 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot read).
    this.hashOptions = { algorithm: 2 as Algorithm, memoryCost: argon2.memoryCost, timeCost: argon2.timeCost, parallelism: 1 };
    this.argon2Slots = new Semaphore(argon2.maxConcurrent ?? os.availableParallelism());
  }

  /** argon2 hashes and verifications in flight now. */
  get argon2InFlight(): number {
    return this.argon2Slots.inFlight;
  }

  hashPassword(password: string): Promise<string> {
    return this.argon2Slots.run(() => hash(normalisePassword(password), this.hashOptions));
  }

  private verifyHash(passwordHash: string, normalisedPassword: string): Promise<boolean> {
    return this.argon2Slots.run(() => verify(passwordHash, normalisedPassword)).catch(() => false);
  }

  private assertAcceptablePassword(password: string, email: string) {
    const problem = checkPassword(password, { email });
    if (problem) throw new NyckelError('invalid_input', `password ${passwordProblemText[problem]}`);
  }

  async create(input: NewUser, context: AuditContext & { actor?: string } = {}): Promise<User> {
    const email = emailSchema.parse(input.email);
    const phone = input.phone ? phoneSchema.parse(input.phone) : undefined;
    this.assertAcceptablePassword(input.password, email);
    const passwordHash = await this.hashPassword(input.password);
    const existing = await this.prisma.user.findUnique({ where: { email } });
    if (existing) throw new NyckelError('conflict', `a user with the email ${email} already exists`);
    const user = await this.prisma.user.create({
      data: {
        email,
        name: input.name?.trim() || null,
        locale: input.locale ?? null,
        passwordHash,
        // Added by an operator: the address is taken as verified.
        emails: { create: [{ address: email, verifiedAt: new Date() }] },
        ...(phone ? { phones: { create: [{ e164: phone }] } } : {}),
      },
    });
    await this.audit.record('user.created', { userId: user.id, data: { actor: context.actor ?? 'unknown' }, ...context });
    return user;
  }

  findById(id: string): Promise<User | null> {
    return this.prisma.user.findUnique({ where: { id } });
  }

  async findByEmail(email: string): Promise<User | null> {
    const parsed = emailSchema.safeParse(email);
    return parsed.success ? this.prisma.user.findUnique({ where: { email: parsed.data } }) : null;
  }

  async requireByEmail(email: string): Promise<User> {
    const user = await this.findByEmail(email);
    if (!user) throw new NyckelError('not_found', `no user with the email ${email}`);
    return user;
  }

  /**
   * The user when the password is right and the account active, otherwise null. An unknown email
   * still costs one argon2id verification, so the answer takes the same time either way.
   */
  async verifyPassword(email: string, password: string): Promise<User | null> {
    const user = await this.findByEmail(email);
    const normalised = normalisePassword(password);
    if (!user) {
      this.dummyHash ??= this.hashPassword('nyckel-dummy-password-for-timing');
      await this.verifyHash(await this.dummyHash, normalised);
      return null;
    }
    const ok = await this.verifyHash(user.passwordHash, normalised);
    return ok && user.status === 'active' ? user : null;
  }

  /**
   * A new password ends the user's other sessions and revokes what relying parties hold (grants,
   * refresh and access tokens) and every remembered browser ("don't ask again"), in one transaction.
   * `keepSessionUid`: the session the user changed it from (the account pages), which stays.
   */
  async setPassword(email: string, password: string, context: AuditContext & { actor?: string; keepSessionUid?: string } = {}): Promise<User> {
    const user = await this.requireByEmail(email);
    this.assertAcceptablePassword(password, user.email);
    const passwordHash = await this.hashPassword(password);
    const { keepSessionUid, ...auditContext } = context;
    const { updated, revoked } = await this.prisma.$transaction(async (tx) => {
      const updated = await tx.user.update({ where: { id: user.id }, data: { passwordHash, passwordChangedAt: new Date() } });
      await tx.rememberedBrowser.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: new Date() } });
      const revoked = await revokeUserAccess(tx, user.id, { keepSessionUid });
      await this.audit
        .within(tx)
        .record('user.password_changed', { userId: user.id, data: { actor: context.actor ?? 'unknown', ...revokedCounts(revoked) }, ...auditContext });
      return { updated, revoked };
    });
    await this.revokeElsewhere(revoked.grantIds);
    return updated;
  }

  /** Disabling ends every session of the user and revokes every grant and token relying parties hold. */
  async setStatus(email: string, status: 'active' | 'disabled', context: AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const data = { actor: context.actor ?? 'unknown' };
    if (status === 'active') {
      const updated = await this.prisma.user.update({ where: { id: user.id }, data: { status } });
      await this.audit.record('user.enabled', { userId: user.id, data, ...context });
      return updated;
    }
    const { updated, revoked } = await this.prisma.$transaction(async (tx) => {
      const updated = await tx.user.update({ where: { id: user.id }, data: { status } });
      const revoked = await revokeUserAccess(tx, user.id);
      await this.audit.within(tx).record('user.disabled', { userId: user.id, data: { ...data, ...revokedCounts(revoked) }, ...context });
      return { updated, revoked };
    });
    await this.revokeElsewhere(revoked.grantIds);
    return updated;
  }

  /** Adds a contact address that may receive sign-in links and codes once verified. */
  async addEmail(email: string, address: string, options: { verified?: boolean; maxAddresses: number } & AuditContext & { actor?: string }) {
    const user = await this.requireByEmail(email);
    const normalised = emailSchema.parse(address);
    const existing = await this.prisma.userEmail.findMany({ where: { userId: user.id } });
    if (existing.some((row) => row.address === normalised)) throw new NyckelError('conflict', `${normalised} is already registered for ${user.email}`);
    if (existing.length >= options.maxAddresses) {
      throw new NyckelError('conflict', `${user.email} already has ${existing.length} addresses, the most allowed (NYCKEL_MAX_CONTACT_EMAILS)`);
    }
    const row = await this.prisma.userEmail.create({
      data: { userId: user.id, address: normalised, verifiedAt: options.verified ? new Date() : null },
    });
    await this.audit.record('user.email_added', {
      userId: user.id,
      data: { address: normalised, verified: Boolean(options.verified), actor: options.actor ?? 'unknown' },
      ...options,
    });
    return row;
  }

  async removeEmail(email: string, address: string, context: AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const normalised = emailSchema.parse(address);
    if (normalised === user.email) throw new NyckelError('conflict', 'the sign-in address cannot be removed; change it instead');
    const { count } = await this.prisma.userEmail.deleteMany({ where: { userId: user.id, address: normalised } });
    if (count === 0) throw new NyckelError('not_found', `${normalised} is not registered for ${user.email}`);
    await this.audit.record('user.email_removed', { userId: user.id, data: { address: normalised, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** An operator vouches for an address (the user proves one themselves by a code during sign-in). */
  async verifyEmail(email: string, address: string, context: AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const normalised = emailSchema.parse(address);
    const { count } = await this.prisma.userEmail.updateMany({ where: { userId: user.id, address: normalised }, data: { verifiedAt: new Date() } });
    if (count === 0) throw new NyckelError('not_found', `${normalised} is not registered for ${user.email}`);
    await this.audit.record('user.email_verified', { userId: user.id, data: { address: normalised, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** Adds a mobile number (E.164) that may receive sign-in codes by SMS once verified. */
  async addPhone(email: string, number: string, options: { verified?: boolean } & AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const e164 = phoneSchema.parse(number);
    const existing = await this.prisma.userPhone.findFirst({ where: { userId: user.id, e164 } });
    if (existing) throw new NyckelError('conflict', `${e164} is already registered for ${user.email}`);
    const row = await this.prisma.userPhone.create({ data: { userId: user.id, e164, verifiedAt: options.verified ? new Date() : null } });
    await this.audit.record('user.phone_added', {
      userId: user.id,
      data: { phone: e164, verified: Boolean(options.verified), actor: options.actor ?? 'unknown' },
      ...options,
    });
    return row;
  }

  async removePhone(email: string, number: string, context: AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const e164 = phoneSchema.parse(number);
    const { count } = await this.prisma.userPhone.deleteMany({ where: { userId: user.id, e164 } });
    if (count === 0) throw new NyckelError('not_found', `${e164} is not registered for ${user.email}`);
    await this.audit.record('user.phone_removed', { userId: user.id, data: { phone: e164, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** An operator vouches for a number: from now on it can receive sign-in codes. */
  async verifyPhone(email: string, number: string, context: AuditContext & { actor?: string } = {}) {
    const user = await this.requireByEmail(email);
    const e164 = phoneSchema.parse(number);
    const { count } = await this.prisma.userPhone.updateMany({ where: { userId: user.id, e164 }, data: { verifiedAt: new Date() } });
    if (count === 0) throw new NyckelError('not_found', `${e164} is not registered for ${user.email}`);
    await this.audit.record('user.phone_verified', { userId: user.id, data: { phone: e164, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** Revokes every "don't ask again in this browser" of the user. */
  async forgetBrowsers(email: string, context: AuditContext & { actor?: string } = {}): Promise<number> {
    const user = await this.requireByEmail(email);
    const { count } = await this.prisma.rememberedBrowser.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: new Date() } });
    await this.audit.record('user.browsers_forgotten', { userId: user.id, data: { count, actor: context.actor ?? 'unknown' }, ...context });
    return count;
  }

  emails(userId: string) {
    return this.prisma.userEmail.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });
  }

  list() {
    return this.prisma.user.findMany({ orderBy: { email: 'asc' }, include: { emails: true, phones: true } });
  }

  async claims(user: User) {
    const [email, phone] = await Promise.all([
      this.prisma.userEmail.findFirst({ where: { userId: user.id, address: user.email } }),
      this.prisma.userPhone.findFirst({ where: { userId: user.id }, orderBy: { createdAt: 'asc' } }),
    ]);
    return {
      sub: user.id,
      email: user.email,
      email_verified: Boolean(email?.verifiedAt),
      ...(user.name ? { name: user.name } : {}),
      ...(user.locale ? { locale: user.locale } : {}),
      ...(phone ? { phone_number: phone.e164, phone_number_verified: Boolean(phone.verifiedAt) } : {}),
      updated_at: Math.floor(user.updatedAt.getTime() / 1000),
    };
  }
}
