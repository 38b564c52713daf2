/**
 * The level-triggered loop every reconciler runs (dispatch, the slave, the
 * router's route feed): events only wake it; a wake-up while a pass runs
 * asks for exactly one more pass, never a queue of them; a failed pass is
 * retried after a pause. `pass` returns true to ask for another pass at once
 * (dispatch does after a transaction conflict).
 */
export class WakeLoop {
  private dirty = false;
  private running = false;
  private stopped = true;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly pass: () => Promise<boolean | void>,
    private readonly onError: (err: Error) => void,
    private readonly retryMs = 250,
  ) {}

  start(): void {
    this.stopped = false;
    this.wake();
  }

  wake(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (this.running) return;
    this.running = true;
    this.idle = (async () => {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        try {
          if ((await this.pass()) === true) this.dirty = true;
        } catch (err) {
          this.onError(err as Error);
          await new Promise((r) => setTimeout(r, this.retryMs));
          this.dirty = true;
        }
      }
      this.running = false;
    })();
  }

  /** Stops waking and waits for the pass in progress, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.idle;
  }
}
