import type { Logger } from '../../logger.ts';

/**
 * Work a request starts but does not wait for (an SMS to a typed number is sent after the answer, so
 * the answer's time says nothing about the number). Each task handles its own failure; what escapes
 * is logged. `drain` waits for the tasks still running, before the database is closed at shutdown.
 */
export class BackgroundWork {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly logger?: Logger) {}

  run(name: string, task: () => Promise<void>): void {
    const done: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
      .then(task)
      .catch((error: unknown) => this.logger?.error({ err: error, task: name }, 'background task failed'))
      .finally(() => this.running.delete(done));
    this.running.add(done);
  }

  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
  }
}
