import os from 'node:os';
import { hash, type Algorithm } from '@node-rs/argon2';
import { parsePhoneNumberWithError } from 'libphonenumber-js';
import { z } from 'zod';
import { NyckelError } from '../errors.ts';
import type { PrismaClient } from '../storage/db.ts';
import { driverOf, type SqlDriver } from '../storage/sql.ts';
import { contactOf, userWhere, userWithContact, type UserContact } from './user-rows.ts';
import type { User } from '../generated/prisma/client.ts';
import { Semaphore } from '../security/semaphore.ts';
import { randomToken } from '../security/crypto.ts';
import { checkPassword, normalisePassword, passwordProblemText } from './password-policy.ts';
import type { AuditContext, AuditLog } from './audit.ts';
import { databaseOnly, revokedCounts, revokeUserAccess, type RevokeElsewhere } from './revoke-access.ts';
import { isArgon2id, matchesStoredHash, schemeOf } from './password-hashes/stored.ts';

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

/**
 * A user name (IDEP.WEB's 202100083755, TDC's "brugernavn"): NFKC, trimmed, lower-cased, so "Adam"
 * and "ａｄａｍ" are one name. Never with "@", which is what tells a typed address from a name.
 */
export const usernameSchema = z
  .string()
  .transform((value) => value.normalize('NFKC').trim().toLowerCase())
  .pipe(
    z
      .string()
      .min(1, 'must not be empty')
      .max(64, 'must be at most 64 characters')
      .regex(/^[^\s@\p{C}]+$/u, 'must not contain "@", spaces or control characters'),
  );

/** What the sign-in form accepts: a user name or the sign-in address (the default), or only one of them. */
export const signInNames = ['username_or_email', 'username', 'email'] as const;
export type SignInNames = (typeof signInNames)[number];

/** The name a person sees for an account: the user name, else the sign-in address. */
export function accountName(user: Pick<User, 'username' | 'email' | 'id'>): string {
  return user.username ?? user.email ?? user.id;
}

export interface NewUser {
  /** At least one of `email` and `username`. */
  email?: string;
  username?: string;
  /** Absent: a random one nobody knows (the user chooses one through an invitation). */
  password?: string;
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
    /** After a revocation: revoked grants' tokens outside the database go (Redis), the apps of ended sessions are told. */
    readonly revokeElsewhere: RevokeElsewhere = databaseOnly,
  ) {
    // 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot read).
    this.hashOptions = { algorithm: 2 as Algorithm, memoryCost: argon2.memoryCost, timeCost: argon2.timeCost, parallelism: 1 };
    this.argon2Slots = new Semaphore(argon2.maxConcurrent ?? os.availableParallelism());
  }

  /** The reads of every sign-in (the user, the claims) go straight to the driver (src/storage/sql.ts). */
  private get sql(): SqlDriver {
    return driverOf(this.prisma);
  }

  /** argon2 hashes and verifications in flight now. */
  get argon2InFlight(): number {
    return this.argon2Slots.inFlight;
  }

  hashPassword(password: string): Promise<string> {
    return this.argon2Slots.run(() => hash(normalisePassword(password), this.hashOptions));
  }

  private assertAcceptablePassword(password: string, user: { email?: string | null; username?: string | null }) {
    const problem = checkPassword(password, { email: user.email ?? undefined, username: user.username ?? undefined });
    if (problem) throw new NyckelError('invalid_input', `password ${passwordProblemText[problem]}`);
  }

  async create(input: NewUser, context: AuditContext & { actor?: string } = {}): Promise<User> {
    const email = input.email === undefined ? undefined : emailSchema.parse(input.email);
    const username = input.username === undefined ? undefined : usernameSchema.parse(input.username);
    if (!email && !username) throw new NyckelError('invalid_input', 'a user needs an email address or a user name (or both)');
    const phone = input.phone ? phoneSchema.parse(input.phone) : undefined;
    if (input.password !== undefined) this.assertAcceptablePassword(input.password, { email, username });
    const passwordHash = await this.hashPassword(input.password ?? randomToken(32));
    await this.assertNamesFree({ email, username });
    const user = await this.namesStillFree({ email, username }, () =>
      this.prisma.user.create({
        data: {
          email: email ?? null,
          username: username ?? null,
          name: input.name?.trim() || null,
          locale: input.locale ?? null,
          passwordHash,
          // Added by an operator: the address is taken as verified.
          ...(email ? { emails: { create: [{ address: email, verifiedAt: new Date() }] } } : {}),
          ...(phone ? { phones: { create: [{ e164: phone }] } } : {}),
        },
      }),
    );
    await this.audit.record('user.created', { userId: user.id, data: { actor: context.actor ?? 'unknown' }, ...context });
    return user;
  }

  /** `write`, where a parallel request that took the name first (the unique index decides) is the same conflict. */
  private async namesStillFree<T>(names: { email?: string; username?: string }, write: () => Promise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      if ((error as { code?: string }).code !== 'P2002') throw error;
      await this.assertNamesFree(names);
      throw error;
    }
  }

  private async assertNamesFree(names: { email?: string; username?: string }, exceptUserId?: string) {
    const taken = await this.prisma.user.findFirst({
      where: { OR: [...(names.email ? [{ email: names.email }] : []), ...(names.username ? [{ username: names.username }] : [])], NOT: { id: exceptUserId } },
      select: { email: true, username: true },
    });
    if (!taken) return;
    if (names.username && taken.username === names.username) throw new NyckelError('conflict', `the user name ${names.username} is taken`);
    throw new NyckelError('conflict', `a user with the email ${names.email} already exists`);
  }

  /** Gives the user a user name (or takes it away when null; an account keeps an address or a name). */
  async setUsername(user: User, username: string | null, context: AuditContext & { actor?: string } = {}): Promise<User> {
    const name = username === null ? null : usernameSchema.parse(username);
    if (name === user.username) return user;
    if (!name && !user.email) throw new NyckelError('conflict', 'the user has no sign-in address: the user name cannot be removed');
    if (name) await this.assertNamesFree({ username: name }, user.id);
    const updated = await this.namesStillFree({ username: name ?? undefined }, () =>
      this.prisma.user.update({ where: { id: user.id }, data: { username: name } }),
    );
    await this.audit.record('user.username_changed', {
      userId: user.id,
      data: { from: user.username, to: name, actor: context.actor ?? 'unknown' },
      ...context,
    });
    return updated;
  }

  findById(id: string): Promise<User | null> {
    return userWhere(this.sql, 'id', id);
  }

  /** `findById`, with what `claims` needs read in the same statement. */
  findWithContact(id: string): Promise<{ user: User; contact: UserContact } | null> {
    return userWithContact(this.sql, id);
  }

  async findByEmail(email: string): Promise<User | null> {
    const parsed = emailSchema.safeParse(email);
    return parsed.success ? userWhere(this.sql, 'email', parsed.data) : null;
  }

  /** The account of what a person typed to sign in: an address when it has "@", else a user name. */
  async findByLogin(identifier: string, accepted: SignInNames = 'username_or_email'): Promise<User | null> {
    if (identifier.includes('@')) return accepted === 'username' ? null : this.findByEmail(identifier);
    if (accepted === 'email') return null;
    const parsed = usernameSchema.safeParse(identifier);
    return parsed.success ? userWhere(this.sql, 'username', parsed.data) : null;
  }

  /** For operators: the account of an address, a user name or an id. */
  async requireByLogin(identifier: string): Promise<User> {
    const user = (await this.findByLogin(identifier)) ?? (z.uuid().safeParse(identifier).success ? await this.findById(identifier) : null);
    if (!user) throw new NyckelError('not_found', `no user ${identifier}`);
    return user;
  }

  /**
   * The user when the password is right and the account active, otherwise null. An unknown name
   * still costs one argon2id verification, so the answer takes the same time either way.
   */
  async passwordMatches(user: User | null, password: string): Promise<User | null> {
    const normalised = normalisePassword(password);
    if (!user) {
      this.dummyHash ??= this.hashPassword('nyckel-dummy-password-for-timing');
      const dummy = await this.dummyHash;
      // The same verifications as for a user (two when the typed form is not NFKC), so the time tells nothing.
      await this.argon2Slots.run(() => matchesStoredHash(dummy, password, normalised));
      return null;
    }
    const ok = await this.argon2Slots.run(() => matchesStoredHash(user.passwordHash, password, normalised));
    if (!ok || user.status !== 'active') return null;
    return isArgon2id(user.passwordHash) ? user : this.upgradeImportedHash(user, password);
  }

  /**
   * An imported hash (bcrypt, PBKDF2, …) that just matched becomes Nyckel's argon2id. Conditional on
   * the old hash: of two sign-ins racing, one writes, and a password changed meanwhile is not overwritten.
   */
  private async upgradeImportedHash(user: User, password: string): Promise<User> {
    const passwordHash = await this.hashPassword(password);
    const { count } = await this.prisma.user.updateMany({ where: { id: user.id, passwordHash: user.passwordHash }, data: { passwordHash } });
    if (count === 0) return user;
    await this.audit.record('user.password_rehashed', { userId: user.id, data: { from: schemeOf(user.passwordHash) } });
    return { ...user, passwordHash };
  }

  /** `passwordMatches` for what was typed as the name. */
  async verifyPassword(identifier: string, password: string): Promise<User | null> {
    return this.passwordMatches(await this.findByLogin(identifier), password);
  }

  /**
   * A new password ends the user's other sessions and revokes what relying parties hold (grants,
   * refresh and access tokens) and every remembered browser ("don't ask again"), in one transaction.
   * `keepSessionUid`: the session the user changed it from (the account pages), which stays.
   */
  async setPassword(user: User, password: string, context: AuditContext & { actor?: string; keepSessionUid?: string } = {}): Promise<User> {
    this.assertAcceptablePassword(password, user);
    return this.setPasswordHash(user, await this.hashPassword(password), context);
  }

  /** `setPassword` with a hash made earlier (a reset's new password, set when its sign-in finishes). */
  async setPasswordHash(user: User, passwordHash: string, context: AuditContext & { actor?: string; keepSessionUid?: string } = {}): Promise<User> {
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
    await this.revokeElsewhere(revoked);
    return updated;
  }

  /** Disabling ends every session of the user and revokes every grant and token relying parties hold. */
  async setStatus(user: User, status: 'active' | 'disabled', context: AuditContext & { actor?: string } = {}) {
    const data = { actor: context.actor ?? 'unknown' };
    if (status === 'active') {
      // Enabling an account the user asked to delete cancels the deletion (src/accounts/erase.ts).
      const updated = await this.prisma.user.update({ where: { id: user.id }, data: { status, deletionDueAt: null } });
      const cancelled = user.deletionDueAt ? { deletionCancelled: true } : {};
      await this.audit.record('user.enabled', { userId: user.id, data: { ...data, ...cancelled }, ...context });
      return updated;
    }
    const { updated, revoked } = await this.prisma.$transaction(async (tx) => {
      const updated = await tx.user.update({ where: { id: user.id }, data: { status } });
      const revoked = await revokeUserAccess(tx, user.id);
      await this.audit.within(tx).record('user.disabled', { userId: user.id, data: { ...data, ...revokedCounts(revoked) }, ...context });
      return { updated, revoked };
    });
    await this.revokeElsewhere(revoked);
    return updated;
  }

  /** Adds a contact address that may receive sign-in links and codes once verified. */
  async addEmail(user: User, address: string, options: { verified?: boolean; maxAddresses: number } & AuditContext & { actor?: string }) {
    const normalised = emailSchema.parse(address);
    const existing = await this.prisma.userEmail.findMany({ where: { userId: user.id } });
    if (existing.some((row) => row.address === normalised)) throw new NyckelError('conflict', `${normalised} is already registered for ${accountName(user)}`);
    if (existing.length >= options.maxAddresses) {
      throw new NyckelError('conflict', `${accountName(user)} already has ${existing.length} addresses, the most allowed (NYCKEL_MAX_CONTACT_EMAILS)`);
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

  async removeEmail(user: User, address: string, context: AuditContext & { actor?: string } = {}) {
    const normalised = emailSchema.parse(address);
    if (normalised === user.email) throw new NyckelError('conflict', 'the sign-in address cannot be removed; change it instead');
    const { count } = await this.prisma.userEmail.deleteMany({ where: { userId: user.id, address: normalised } });
    if (count === 0) throw new NyckelError('not_found', `${normalised} is not registered for ${accountName(user)}`);
    await this.audit.record('user.email_removed', { userId: user.id, data: { address: normalised, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** An operator vouches for an address (the user proves one themselves by a code during sign-in). */
  async verifyEmail(user: User, address: string, context: AuditContext & { actor?: string } = {}) {
    const normalised = emailSchema.parse(address);
    const { count } = await this.prisma.userEmail.updateMany({ where: { userId: user.id, address: normalised }, data: { verifiedAt: new Date() } });
    if (count === 0) throw new NyckelError('not_found', `${normalised} is not registered for ${accountName(user)}`);
    await this.audit.record('user.email_verified', { userId: user.id, data: { address: normalised, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** Adds a mobile number (E.164) that may receive sign-in codes by SMS once verified. */
  async addPhone(user: User, number: string, options: { verified?: boolean } & AuditContext & { actor?: string } = {}) {
    const e164 = phoneSchema.parse(number);
    const existing = await this.prisma.userPhone.findFirst({ where: { userId: user.id, e164 } });
    if (existing) throw new NyckelError('conflict', `${e164} is already registered for ${accountName(user)}`);
    const row = await this.prisma.userPhone.create({ data: { userId: user.id, e164, verifiedAt: options.verified ? new Date() : null } });
    await this.audit.record('user.phone_added', {
      userId: user.id,
      data: { phone: e164, verified: Boolean(options.verified), actor: options.actor ?? 'unknown' },
      ...options,
    });
    return row;
  }

  async removePhone(user: User, number: string, context: AuditContext & { actor?: string } = {}) {
    const e164 = phoneSchema.parse(number);
    const { count } = await this.prisma.userPhone.deleteMany({ where: { userId: user.id, e164 } });
    if (count === 0) throw new NyckelError('not_found', `${e164} is not registered for ${accountName(user)}`);
    await this.audit.record('user.phone_removed', { userId: user.id, data: { phone: e164, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** An operator vouches for a number: from now on it can receive sign-in codes. */
  async verifyPhone(user: User, number: string, context: AuditContext & { actor?: string } = {}) {
    const e164 = phoneSchema.parse(number);
    const { count } = await this.prisma.userPhone.updateMany({ where: { userId: user.id, e164 }, data: { verifiedAt: new Date() } });
    if (count === 0) throw new NyckelError('not_found', `${e164} is not registered for ${accountName(user)}`);
    await this.audit.record('user.phone_verified', { userId: user.id, data: { phone: e164, actor: context.actor ?? 'unknown' }, ...context });
  }

  /** Revokes every "don't ask again in this browser" of the user. */
  async forgetBrowsers(user: User, context: AuditContext & { actor?: string } = {}): Promise<number> {
    const { count } = await this.prisma.rememberedBrowser.updateMany({ where: { userId: user.id, revokedAt: null }, data: { revokedAt: new Date() } });
    await this.audit.record('user.browsers_forgotten', { userId: user.id, data: { count, actor: context.actor ?? 'unknown' }, ...context });
    return count;
  }

  emails(userId: string) {
    return this.prisma.userEmail.findMany({ where: { userId }, orderBy: { createdAt: 'asc' } });
  }

  list() {
    return this.prisma.user.findMany({ orderBy: [{ username: 'asc' }, { email: 'asc' }], include: { emails: true, phones: true } });
  }

  /** The user's OpenID claims: the sign-in address's verification and the first phone number are read unless given (`findWithContact`). */
  async claims(user: User, known?: UserContact) {
    const contact = known ?? (await contactOf(this.sql, user.id));
    const phone = contact.e164 ? { e164: contact.e164, verified: Boolean(contact.phoneVerified) } : undefined;
    return {
      sub: user.id,
      ...(user.email ? { email: user.email, email_verified: contact.emailVerified } : {}),
      ...(user.username ? { preferred_username: user.username } : {}),
      ...(user.name ? { name: user.name } : {}),
      ...(user.locale ? { locale: user.locale } : {}),
      ...(phone ? { phone_number: phone.e164, phone_number_verified: phone.verified } : {}),
      updated_at: Math.floor(user.updatedAt.getTime() / 1000),
    };
  }
}
