import type { SecretBox } from '../security/crypto.ts';
import type { PrismaClient } from '../storage/db.ts';

/**
 * A delivery's subject, text and HTML carry one-time codes and sign-in links (the code mail's
 * subject names the code), so they are never in clear at rest: sealed with the master key (bound to
 * the row's id) from the moment the row is written, and cleared once a mail is sent or given up.
 * Only the dev outbox keeps them, still sealed: there the row is the mailbox.
 */
export interface DeliveryBody {
  subject?: string;
  text: string;
  html?: string;
  /** The From's display name (absent in rows queued before there was one: the name in NYCKEL_MAIL_FROM). */
  fromName?: string;
}

const PURPOSE = 'delivery-body';

export function sealDeliveryBody(box: SecretBox, id: string, body: DeliveryBody): Uint8Array<ArrayBuffer> {
  return box.seal(PURPOSE, JSON.stringify(body), id);
}

/** The body of a row, or undefined when it has none (sent, given up) or it does not open. */
export function openDeliveryBody(box: SecretBox, row: { id: string; body: Uint8Array | null }): DeliveryBody | undefined {
  if (!row.body) return undefined;
  try {
    return JSON.parse(box.open(PURPOSE, row.body, row.id).toString('utf8')) as DeliveryBody;
  } catch {
    return undefined;
  }
}

/** Words of a body that could be a code, a link's token or an id: any run with a digit, any long run. */
function secretLookingWords(body: DeliveryBody): string[] {
  const words = [body.subject ?? '', body.text, body.html ?? ''].join('\n').match(/[A-Za-z0-9_-]{4,}/g) ?? [];
  return [...new Set(words.filter((word) => /\d/.test(word) || word.length >= 16))].sort((a, b) => b.length - a.length);
}

/**
 * A provider's error text without anything of the mail it is about: some quote the message back
 * (a refused subject line), and the text is logged and kept in `last_error`.
 */
export function withoutBodyContent(text: string, body: DeliveryBody): string {
  let scrubbed = text;
  for (const word of secretLookingWords(body)) scrubbed = scrubbed.replaceAll(word, '[redacted]');
  return scrubbed;
}

/**
 * Rows written before the secrets_at_rest migration keep their body in the clear columns: mail still
 * queued and the dev outbox are sealed here (at start-up, where the master key is known); the
 * migration itself emptied every other row. One conditional UPDATE per row, so nodes starting
 * together seal each once.
 */
export async function sealLegacyDeliveries(prisma: PrismaClient, box: SecretBox, batchSize = 200): Promise<number> {
  let sealed = 0;
  for (;;) {
    const rows = await prisma.delivery.findMany({ where: { body: null, text: { not: null } }, take: batchSize });
    if (rows.length === 0) return sealed;
    const updates = rows.map((row) =>
      prisma.delivery.updateMany({
        where: { id: row.id, body: null, text: { not: null } },
        data: {
          body:
            row.status === 'queued' || row.transport === 'outbox'
              ? sealDeliveryBody(box, row.id, { subject: row.subject ?? undefined, text: row.text!, html: row.html ?? undefined })
              : null,
          subject: null,
          text: null,
          html: null,
        },
      }),
    );
    sealed += (await prisma.$transaction(updates)).reduce((sum, { count }) => sum + count, 0);
  }
}
