import { randomUUID } from 'node:crypto';
import { NyckelError } from '../errors.ts';
import { isStorageUnavailable } from '../storage/unavailable.ts';
import type { Delivery, Prisma } from '../generated/prisma/client.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';
import { openDeliveryBody, sealDeliveryBody, withoutBodyContent } from './sealed-body.ts';
import { MailTransportError, type MailTransport } from './transport.ts';

/**
 * The mail queue. A mail is a `deliveries` row (channel `email`), written by `enqueueMail` — in the
 * caller's transaction when it has one, so a challenge and the mail that carries it are committed
 * together or not at all — and sent by a `MailDispatcher`, which retries with backoff and finally
 * marks it `failed`. Several Nyckel nodes may run dispatchers on one PostgreSQL: a row is claimed
 * with `FOR UPDATE SKIP LOCKED` and leased, so one node sends it. The body is sealed while queued and
 * cleared once sent or given up (src/delivery/sealed-body.ts).
 */

export const MAIL_CHANNEL = 'email';

/** Anything with the `delivery` model: the Prisma client, or the client of an interactive transaction. */
export type DeliveryDb = Pick<Prisma.TransactionClient, 'delivery'>;

export interface MailToEnqueue {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** What the mail is for, e.g. `email-code`, `email-link`, `forgot-device`; shown in the outbox and logs. */
  purpose: string;
  /** The display name of the From (the client's or the service's, src/branding/mail-branding.ts); its address is NYCKEL_MAIL_FROM's. */
  fromName?: string;
}

const lineBreak = /[\r\n]/;

/** Writes a queued mail, its body sealed; it is sent by the dispatcher (call `kick()` once the transaction has committed). */
export async function enqueueMail(db: DeliveryDb, box: SecretBox, mail: MailToEnqueue): Promise<Delivery> {
  const to = mail.to.trim();
  if (!/^[^\s@<>,;"]+@[^\s@<>,;"]+$/.test(to) || to.length > 320) {
    throw new NyckelError('invalid_input', 'the mail recipient is not an email address');
  }
  if (!mail.subject || lineBreak.test(mail.subject) || mail.subject.length > 300) {
    throw new NyckelError('invalid_input', 'a mail subject must be one line of 1 to 300 characters');
  }
  if (!mail.text) throw new NyckelError('invalid_input', 'a mail needs a text body');
  if (mail.fromName !== undefined && (lineBreak.test(mail.fromName) || mail.fromName.length > 100)) {
    throw new NyckelError('invalid_input', 'a sender name must be one line of at most 100 characters');
  }
  if (!/^[a-z0-9][a-z0-9._:-]{0,63}$/i.test(mail.purpose)) {
    throw new NyckelError('invalid_input', 'a mail purpose is a short identifier such as email-code');
  }
  const id = randomUUID();
  return db.delivery.create({
    data: {
      id,
      channel: MAIL_CHANNEL,
      recipient: to,
      body: sealDeliveryBody(box, id, { subject: mail.subject, text: mail.text, html: mail.html, fromName: mail.fromName }),
      purpose: mail.purpose,
    },
  });
}

export type DeliveryState = Pick<Delivery, 'id' | 'status' | 'attempts' | 'lastError' | 'nextAttempt' | 'createdAt' | 'sentAt' | 'transport' | 'purpose'>;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where a delivery stands (queued, sent, failed), without its body; undefined when there is no such row. */
export async function deliveryStatus(prisma: DeliveryDb, id: string): Promise<DeliveryState | undefined> {
  if (!uuid.test(id)) return undefined;
  const row = await prisma.delivery.findUnique({
    where: { id },
    select: {
      id: true,
      status: true,
      attempts: true,
      lastError: true,
      nextAttempt: true,
      createdAt: true,
      sentAt: true,
      transport: true,
      purpose: true,
    },
  });
  return row ?? undefined;
}

export interface MailDispatcherOptions {
  /** Wait before each retry; after the last one fails the mail is marked failed. Default 10 s, 60 s, 5 min, 15 min, 60 min. */
  retryDelaysSeconds?: number[];
  /** How often to look for due mail (retries, and mail enqueued by other nodes). Default 5000. */
  pollIntervalMs?: number;
  /**
   * Sends in flight at once (also the rows claimed per round trip). Each send is recorded on its own,
   * so one slow or hanging send holds back nothing but its own slot. Default 10.
   */
  batchSize?: number;
  /**
   * How long a claimed row stays invisible to other dispatchers. Longer than any send can take (the
   * transports time out well within it); if a node dies mid-send, the mail is retried after it.
   * Default 600.
   */
  leaseSeconds?: number;
  /** Counts each send attempt's outcome (sent, retry, failed) in nyckel_deliveries_total. */
  metrics?: Pick<Metrics, 'delivery'>;
}

export const defaultRetryDelaysSeconds: readonly number[] = [10, 60, 5 * 60, 15 * 60, 60 * 60];

interface ClaimedRow {
  id: string;
  recipient: string;
  body: Uint8Array | null;
  purpose: string;
  attempts: number;
}

export class MailDispatcher {
  private readonly retryDelays: readonly number[];
  private readonly pollIntervalMs: number;
  private readonly batchSize: number;
  private readonly leaseSeconds: number;
  private readonly metrics: Pick<Metrics, 'delivery'> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Passes (claiming rows and starting their sends) run one after another; this is the last one queued. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Sends started by a pass and not yet recorded. */
  private readonly inFlight = new Set<Promise<void>>();
  private kickQueued = false;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly box: SecretBox,
    readonly transport: MailTransport,
    private readonly from: string,
    private readonly logger: Logger,
    options: MailDispatcherOptions = {},
  ) {
    this.retryDelays = [...(options.retryDelaysSeconds ?? defaultRetryDelaysSeconds)];
    if (this.retryDelays.some((delay) => !(delay >= 0) || !Number.isFinite(delay))) {
      throw new Error('retryDelaysSeconds must be finite numbers >= 0');
    }
    this.pollIntervalMs = options.pollIntervalMs ?? 5000;
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 10));
    this.leaseSeconds = Math.max(1, Math.ceil(options.leaseSeconds ?? 600));
    this.metrics = options.metrics;
  }

  /** Polls for due mail (and delivers what is due now). The timer does not keep the process alive. */
  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => this.kick(), this.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /**
   * Stops polling and waits for the pass in flight (and its sends) to finish and be recorded. Afterwards
   * kick() does nothing and deliverDue() resolves 0; queued mail waits for the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.tail;
    await this.settled();
  }

  /** Delivers what is due as soon as possible, without waiting for the next poll. Never throws. */
  kick(): void {
    if (this.stopped || this.kickQueued) return;
    this.kickQueued = true;
    this.tail = this.tail
      .then(() => {
        this.kickQueued = false;
        return this.pass();
      })
      .catch((error: unknown) => {
        // The database going away is an outage to wait out (the next pass retries), not a fault here.
        this.logPassFailure(error);
      });
  }

  /**
   * Delivers everything due now and waits until every send in flight (this pass's and earlier ones')
   * is recorded; resolves with the number of sends this pass started (sent, retried or failed).
   */
  async deliverDue(): Promise<number> {
    const run = this.tail.then(() => this.pass());
    this.tail = run.catch(() => undefined);
    const started = await run;
    await this.settled();
    return started;
  }

  private logPassFailure(error: unknown) {
    // The database going away is an outage to wait out (the next pass retries), not a fault here.
    if (isStorageUnavailable(error)) this.logger.warn({ error: describeError(error) }, 'mail dispatch pass skipped: the database is unreachable');
    else this.logger.error({ error: describeError(error) }, 'mail dispatch pass failed');
  }

  /**
   * Until no pass runs and no send is in flight, those started meanwhile included (a finished send
   * kicks a pass, which may claim rows before their sends are in flight).
   */
  private async settled(): Promise<void> {
    for (;;) {
      const tail = this.tail;
      await Promise.allSettled([tail, ...this.inFlight]);
      if (this.inFlight.size === 0 && tail === this.tail) return;
    }
  }

  /** Claims due rows for the free send slots and starts their sends; a finished send frees its slot and kicks. */
  private async pass(): Promise<number> {
    let started = 0;
    while (!this.stopped) {
      const free = this.batchSize - this.inFlight.size;
      if (free <= 0) break;
      const claimed = await this.claim(free);
      for (const row of claimed) this.startSend(row);
      started += claimed.length;
      if (claimed.length < free) break;
    }
    return started;
  }

  private startSend(row: ClaimedRow) {
    const send: Promise<void> = this.deliver(row)
      .catch((error: unknown) => this.logPassFailure(error))
      .finally(() => {
        this.inFlight.delete(send);
        // A slot is free: mail that waited for one goes now.
        this.kick();
      });
    this.inFlight.add(send);
  }

  /**
   * Takes up to `limit` due rows for this dispatcher: rows another transaction holds are skipped,
   * and a claimed row's next_attempt moves past the lease so nobody else takes it meanwhile.
   */
  private claim(limit: number): Promise<ClaimedRow[]> {
    return this.prisma.$queryRaw<ClaimedRow[]>`
      UPDATE deliveries
         SET next_attempt = now() + ${this.leaseSeconds}::int * interval '1 second',
             attempts = attempts + 1
       WHERE id IN (
         SELECT id FROM deliveries
          WHERE status = 'queued' AND channel = ${MAIL_CHANNEL} AND next_attempt <= now()
          ORDER BY created_at
          LIMIT ${limit}::int
          FOR UPDATE SKIP LOCKED)
      RETURNING id, recipient, body, purpose, attempts`;
  }

  /** Sends one claimed row; the outcome is written only while the claim is still ours. */
  private async deliver(row: ClaimedRow): Promise<void> {
    const log = { deliveryId: row.id, purpose: row.purpose, to: row.recipient, transport: this.transport.name, attempt: row.attempts };
    const { failure, permanent } = await this.send(row);
    const givingUp = failure !== undefined && (permanent || row.attempts > this.retryDelays.length);
    this.metrics?.delivery('mail', this.transport.name, failure === undefined ? 'sent' : givingUp ? 'failed' : 'retry');
    // Each update only applies while the claim is still ours (same attempt, still queued).
    const ours = { id: row.id, status: 'queued' as const, attempts: row.attempts };
    let updated: number;
    if (failure === undefined) {
      // The dev outbox is the mailbox: its copy stays (sealed). Everywhere else the body goes.
      const body = this.transport.name === 'outbox' ? {} : { body: null };
      ({ count: updated } = await this.prisma.delivery.updateMany({
        where: ours,
        data: { status: 'sent', sentAt: new Date(), transport: this.transport.name, ...body },
      }));
      if (updated) this.logger.info(log, 'mail sent');
    } else if (givingUp) {
      ({ count: updated } = await this.prisma.delivery.updateMany({
        where: ours,
        data: { status: 'failed', lastError: failure, transport: this.transport.name, body: null },
      }));
      if (updated) this.logger.error({ ...log, error: failure }, 'mail could not be delivered; giving up');
    } else {
      const retryInSeconds = this.retryDelays[row.attempts - 1];
      updated = await this.prisma.$executeRaw`
        UPDATE deliveries
           SET next_attempt = now() + ${retryInSeconds}::double precision * interval '1 second',
               last_error = ${failure}
         WHERE id = ${row.id}::uuid AND status = 'queued' AND attempts = ${row.attempts}::int`;
      if (updated) this.logger.warn({ ...log, error: failure, retryInSeconds }, 'mail send failed; will retry');
    }
    if (!updated) this.logger.warn(log, 'mail delivery outcome not recorded: the claim had expired and the row was taken over');
  }

  /** Opens the sealed body and hands it to the transport; a failure is described without the mail's content. */
  private async send(row: ClaimedRow): Promise<{ failure?: string; permanent?: boolean }> {
    const body = openDeliveryBody(this.box, row);
    // Nothing to send (the body was cleared, or was sealed with another master key): retrying cannot help.
    if (!body) return { failure: 'the mail body is gone or does not open with this master key', permanent: true };
    try {
      await this.transport.send({
        to: row.recipient,
        from: this.from,
        ...(body.fromName ? { fromName: body.fromName } : {}),
        subject: body.subject ?? '',
        text: body.text,
        ...(body.html !== undefined ? { html: body.html } : {}),
      });
      return {};
    } catch (error) {
      return { failure: withoutBodyContent(describeError(error), body) };
    }
  }
}

/** A one-line, secret-free account of a failed send, for `last_error` and the logs. */
function describeError(error: unknown): string {
  if (error instanceof MailTransportError) return error.message;
  const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
  const text = typeof message === 'string' ? `${typeof name === 'string' ? name : 'Error'}: ${message}` : 'unknown error';
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 500 ? `${line.slice(0, 499)}…` : line;
}
