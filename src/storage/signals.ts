import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';

/**
 * "Something happened to this challenge": an email link opened in another tab, a push answered on
 * the phone. A waiting page asks for the status with `?wait=` and is answered as soon as the signal
 * comes, on whichever node it lands. The signal carries no data: the page then reads the state from
 * the database, which stays the one truth (and where a challenge is consumed exactly once).
 */
export interface Signals {
  notify(topic: string): Promise<void>;
  /**
   * Starts listening; once this resolves a notify anywhere reaches `notified`, so a caller reads the
   * state after it and cannot miss a signal sent in between. `notified` is true when notified, false
   * after `timeoutMs` or when `abort` fires; either way the listener is gone by then.
   */
  listen(topic: string, timeoutMs: number, abort?: AbortSignal): Promise<{ notified: Promise<boolean> }>;
  close(): Promise<void>;
}

abstract class WaitingRoom implements Signals {
  protected readonly local = new EventEmitter().setMaxListeners(0);
  private readonly open = new Set<(notified: boolean) => void>();
  private closed = false;

  abstract notify(topic: string): Promise<void>;
  protected async subscribe(_topic: string): Promise<void> {}
  protected async unsubscribe(_topic: string): Promise<void> {}

  async listen(topic: string, timeoutMs: number, abort?: AbortSignal): Promise<{ notified: Promise<boolean> }> {
    let resolveNotified!: (notified: boolean) => void;
    const notified = new Promise<boolean>((resolve) => (resolveNotified = resolve));
    const done = (value: boolean) => {
      this.open.delete(done);
      clearTimeout(timer);
      this.local.off(topic, onSignal);
      abort?.removeEventListener('abort', onAbort);
      resolveNotified(value);
    };
    const onSignal = () => done(true);
    const onAbort = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    this.local.on(topic, onSignal);
    this.open.add(done);
    abort?.addEventListener('abort', onAbort, { once: true });
    if (abort?.aborted || this.closed) done(false);
    await this.subscribe(topic);
    return { notified: notified.finally(() => this.unsubscribe(topic)) };
  }

  /** Answers every wait in progress (with false), so held requests end before a shutdown. */
  async close(): Promise<void> {
    this.closed = true;
    for (const done of [...this.open]) done(false);
    this.local.removeAllListeners();
  }
}

/** One node: the signal stays in the process. */
export class LocalSignals extends WaitingRoom {
  async notify(topic: string): Promise<void> {
    this.local.emit(topic);
  }
}

/**
 * Several nodes: Redis pub/sub. One subscription per topic with someone waiting on this node; a
 * failed publish is not an error for the answering request (the waiting page also re-reads the state
 * when its wait ends).
 */
export class RedisSignals extends WaitingRoom {
  private readonly waiting = new Map<string, number>();

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    super();
    subscriber.on('message', (channel: string) => {
      if (channel.startsWith(this.channelPrefix)) this.local.emit(channel.slice(this.channelPrefix.length));
    });
  }

  private get channelPrefix() {
    return `${this.prefix}signal:`;
  }

  async notify(topic: string): Promise<void> {
    await this.publisher.publish(this.channelPrefix + topic, '1').catch(() => undefined);
  }

  protected async subscribe(topic: string): Promise<void> {
    const count = this.waiting.get(topic) ?? 0;
    this.waiting.set(topic, count + 1);
    if (count === 0) await this.subscriber.subscribe(this.channelPrefix + topic).catch(() => undefined);
  }

  protected async unsubscribe(topic: string): Promise<void> {
    const count = (this.waiting.get(topic) ?? 1) - 1;
    if (count > 0) return void this.waiting.set(topic, count);
    this.waiting.delete(topic);
    await this.subscriber.unsubscribe(this.channelPrefix + topic).catch(() => undefined);
  }
}
