import { setTimeout as sleep } from 'node:timers/promises';
import type { Context } from 'koa';
import { z } from 'zod';
import { challengeTopic } from '../../factors/shared/challenges.ts';
import type { Signals } from '../../storage/signals.ts';

/** Longest a status request may be held (under the usual 60 s read timeout of proxies). */
export const MAX_WAIT_SECONDS = 25;

const waitQuery = z.coerce.number().int().min(1).max(MAX_WAIT_SECONDS).optional().catch(undefined);

/**
 * A challenge's status for a waiting page. With `?wait=N` a pending status is held up to N seconds
 * and answered as soon as the challenge is signalled (src/storage/signals.ts), so the page learns at
 * once instead of asking again and again. Listening starts before the first read, so a signal sent
 * in between is not missed; a client that goes away stops the wait.
 */
export async function statusWhenChanged<T>(
  ctx: Context,
  signals: Signals,
  challengeId: string,
  read: () => Promise<T>,
  pending: (status: T) => boolean,
  /** Seconds until the challenge itself ends, where the status says: the wait ends then too. */
  endsIn: (status: T) => number | undefined = () => undefined,
): Promise<T> {
  const seconds = waitQuery.parse(ctx.query.wait);
  if (!seconds) return read();
  const gone = new AbortController();
  const onClose = () => gone.abort();
  ctx.req.once('close', onClose);
  try {
    const { notified } = await signals.listen(challengeTopic(challengeId), seconds * 1000, gone.signal);
    const first = await read();
    if (!pending(first)) {
      gone.abort();
      return first;
    }
    const left = endsIn(first);
    const deadline = left === undefined ? undefined : sleep(Math.max(0, left) * 1000 + 250, undefined, { signal: gone.signal }).catch(() => undefined);
    await (deadline ? Promise.race([notified, deadline]) : notified);
    return gone.signal.aborted ? first : read();
  } finally {
    ctx.req.off('close', onClose);
    gone.abort();
  }
}
