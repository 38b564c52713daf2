/**
 * The level-triggered loop every reconciler runs (dispatch, the slave, the
 * router's route feed): events only wake it; a wake-up while a pass runs
 * asks for exactly one more pass, never a queue of them; a failed pass is
 * retried after a pause. `pass` returns true to ask for another pass at once
 * (dispatch does after a transaction conflict).
 */
export class WakeLoop {
    pass;
    onError;
    retryMs;
    dirty = false;
    running = false;
    stopped = true;
    idle = Promise.resolve();
    constructor(pass, onError, retryMs = 250) {
        this.pass = pass;
        this.onError = onError;
        this.retryMs = retryMs;
    }
    start() {
        this.stopped = false;
        this.wake();
    }
    wake() {
        if (this.stopped)
            return;
        this.dirty = true;
        if (this.running)
            return;
        this.running = true;
        this.idle = (async () => {
            while (this.dirty && !this.stopped) {
                this.dirty = false;
                try {
                    if ((await this.pass()) === true)
                        this.dirty = true;
                }
                catch (err) {
                    this.onError(err);
                    await new Promise((r) => setTimeout(r, this.retryMs));
                    this.dirty = true;
                }
            }
            this.running = false;
        })();
    }
    /** Stops waking and waits for the pass in progress, if any. */
    async stop() {
        this.stopped = true;
        await this.idle;
    }
}
//# sourceMappingURL=wake-loop.js.map