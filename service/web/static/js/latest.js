// One request at a time: what arrives while one is in flight waits, and only the latest of it is sent
// when that one returns (the latest wins), so a fast writer does not queue a request per stroke.

export class LatestWins {
  /**
   * @param send (request) => Promise: sends one request and shows its answer.
   * @param merge (pending, next) => what waits when `next` arrives while `pending` already waits.
   * @param onIdle called when a request returns and nothing waits.
   */
  constructor(send, { merge = (pending, next) => next, onIdle = () => {} } = {}) {
    this.send = send;
    this.merge = merge;
    this.onIdle = onIdle;
    this.inFlight = false;
    this.pending = null; // the request to send next, if any
  }

  submit(request) {
    if (this.inFlight) {
      this.pending = this.pending ? this.merge(this.pending, request) : request;
      return;
    }
    this.inFlight = true;
    this.send(request).finally(() => {
      this.inFlight = false;
      const next = this.pending;
      this.pending = null;
      if (next) this.submit(next);
      else this.onIdle();
    });
  }

  /** Forget what waits (the user cleared or replaced it). */
  drop() {
    this.pending = null;
  }
}
