import Router from '@koa/router';
import type { Context } from 'koa';
import type { SecretBox } from '../security/crypto.ts';
import type { PageRenderer } from '../server/pages.ts';
import type { PrismaClient } from '../storage/db.ts';
import { MAIL_CHANNEL } from '../delivery/dispatcher.ts';
import { openDeliveryBody } from '../delivery/sealed-body.ts';
import type { MailTransport } from '../delivery/transport.ts';

/** Part of a mail's text: plain text, or an http(s) URL shown as a link. */
export type TextPart = { text: string; url?: undefined } | { text: string; url: string };

const urlPattern = /https?:\/\/[^\s<>"'`]+/g;

/** Splits text into plain runs and http(s) URLs (without trailing punctuation); the template escapes both. */
export function linkifyParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(urlPattern)) {
    let url = match[0];
    // A sentence's full stop or a closing bracket after a URL is not part of it.
    while (/[.,;:!?)\]}]$/.test(url) && !(url.endsWith(')') && url.includes('('))) url = url.slice(0, -1);
    const start = match.index;
    if (start > last) parts.push({ text: text.slice(last, start) });
    parts.push({ text: url, url });
    last = start + url.length;
  }
  if (last < text.length) parts.push({ text: text.slice(last) });
  return parts;
}

export interface OutboxRouteDependencies {
  production: boolean;
  transport: MailTransport;
  prisma: PrismaClient;
  /** Opens the sealed bodies (src/delivery/sealed-body.ts). */
  box: SecretBox;
  pages: PageRenderer;
  /** Whether SMS go to the outbox too (channel `sms`): then the pages list them, and exist even when mail does not. */
  sms?: boolean;
  /** Most messages listed (newest first). Default 200. */
  limit?: number;
}

/**
 * The development outbox: GET /dev/outbox (HTML) and GET /dev/outbox.json (`?to=` filters by
 * recipient, case-insensitively). Only when mail goes to the outbox transport and NODE_ENV is not
 * production; otherwise undefined, and the paths do not exist.
 */
export function devOutboxRoutes(deps: OutboxRouteDependencies): Router | undefined {
  const mailOutbox = deps.transport.name === 'outbox';
  if (deps.production || process.env.NODE_ENV === 'production' || !(mailOutbox || deps.sms)) return undefined;
  const channels = [...(mailOutbox ? [MAIL_CHANNEL] : []), ...(deps.sms ? ['sms'] : [])];
  const limit = deps.limit ?? 200;
  const router = new Router();

  /** The newest messages, their bodies opened (a body that is gone shows as empty). */
  const messages = async (ctx: Context) => {
    const to = typeof ctx.query.to === 'string' && ctx.query.to.trim() ? ctx.query.to.trim() : undefined;
    const rows = await deps.prisma.delivery.findMany({
      where: { channel: { in: channels }, ...(to ? { recipient: { equals: to, mode: 'insensitive' as const } } : {}) },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      take: limit,
    });
    return rows.map((row) => {
      const body = openDeliveryBody(deps.box, row);
      return { ...row, subject: body?.subject ?? null, text: body?.text ?? '', html: body?.html ?? null };
    });
  };

  router.get('/dev/outbox.json', async (ctx) => {
    const rows = await messages(ctx);
    ctx.set('Cache-Control', 'no-store');
    ctx.body = rows.map((row) => ({
      id: row.id,
      // Mail entries look as they always did; a text says what it is.
      ...(row.channel === MAIL_CHANNEL ? {} : { channel: row.channel }),
      to: row.recipient,
      subject: row.subject,
      text: row.text,
      html: row.html,
      purpose: row.purpose,
      status: row.status,
      createdAt: row.createdAt.toISOString(),
    }));
  });

  router.get('/dev/outbox', async (ctx) => {
    const rows = await messages(ctx);
    // The page is a developer tool, in English whatever the browser asks for.
    deps.pages.html(ctx, 'outbox', 'en', {
      filter: typeof ctx.query.to === 'string' ? ctx.query.to : '',
      messages: rows.map((row) => ({
        id: row.id,
        createdAt: row.createdAt.toISOString(),
        time: row.createdAt
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' UTC'),
        to: row.recipient,
        subject: row.subject ?? (row.channel === 'sms' ? 'SMS' : ''),
        purpose: row.purpose,
        status: row.status,
        attempts: row.attempts,
        lastError: row.lastError,
        hasHtml: row.html !== null,
        parts: linkifyParts(row.text),
      })),
    });
  });

  return router;
}
