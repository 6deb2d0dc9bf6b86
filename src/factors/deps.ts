import type { AuditLog } from '../accounts/audit.ts';
import type { UnsignedMail } from '../branding/mail-branding.ts';
import type { Settings } from '../config/settings.ts';
import type { Logger } from '../logger.ts';
import type { Locale } from '../i18n/locales.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { ChallengeStore } from './shared/challenges.ts';
import type { SmsTransport } from './sms/transport.ts';
import type { FailureLock } from './shared/failure-lock.ts';
import type { CounterStore } from '../storage/counters.ts';
import type { BackgroundWork } from './shared/background.ts';
import type { SendGuards } from './shared/send-guard.ts';

export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** A mail without its sign-off: the queue adds who sent it and how to reach support (src/branding/mail-branding.ts). */
export type OutgoingMail = UnsignedMail;

/** The mail queue as the factors see it: enqueue inside their transaction, then kick after commit. */
export interface MailQueue {
  enqueue(tx: Transaction, mail: OutgoingMail): Promise<{ id: string }>;
  kick(): void;
}

/** Renders a mail template (text or HTML) in the user's language: the port factors write mail through (src/server/views.ts implements it). */
export interface MailTemplates {
  render(template: string, locale: Locale, context?: Record<string, unknown>): string;
}

/** What every factor module is built from. */
export interface FactorDependencies {
  prisma: PrismaClient;
  settings: Settings;
  challenges: ChallengeStore;
  mail: MailQueue;
  views: MailTemplates;
  /** Seals factor secrets at rest and keys the hashes of recovery codes. */
  box: SecretBox;
  /** Wrong answers per user and factor family (the same lock the challenge store counts in). */
  lock: FailureLock;
  /** Where budgets are counted (Redis when configured, else the database). */
  counters: CounterStore;
  /** The cooldown and hourly budgets every send of a code or link passes, per channel. */
  sends: SendGuards;
  /** Work that finishes after the response (an SMS to a typed number); drained at shutdown. */
  background: BackgroundWork;
  /** SMS: the transport (undefined when SMS cannot be sent: the method is then unavailable), audit and log. */
  sms?: { transport?: SmsTransport; audit: AuditLog; logger: Logger };
}
