import type { Settings } from '../config/settings.ts';
import type { Views } from '../server/views.ts';
import type { PrismaClient } from '../storage/db.ts';
import type { ChallengeStore } from './shared/challenges.ts';

export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
  html?: string;
  purpose: string;
}

/** The mail queue as the factors see it: enqueue inside their transaction, then kick after commit. */
export interface MailQueue {
  enqueue(tx: Transaction, mail: OutgoingMail): Promise<{ id: string }>;
  kick(): void;
}

/** What every factor module is built from. */
export interface FactorDependencies {
  prisma: PrismaClient;
  settings: Settings;
  challenges: ChallengeStore;
  mail: MailQueue;
  views: Views;
}
