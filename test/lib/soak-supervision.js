// Watches a Camera's supervisor for the reliability suites: records every state change, and checks that
// each retry waited what the backoff schedule says and that camrelay came back at the first attempt it
// made once the camera was reachable again.
"use strict";
const assert = require("assert");
const { until } = require("./toolkit");

const FAILURE_STATES = new Set(["retrying", "stalled", "failed"]);

class SupervisionLog {
  constructor(camera) {
    this.camera = camera;
    this.states = [];
    this.warnings = [];
    this.onState = (s) => this.states.push({ ...s, at: Date.now() });
    this.onWarning = (w) => this.warnings.push(w);
    camera.on("state", this.onState);
    camera.on("warning", this.onWarning);
  }

  detach() {
    this.camera.off("state", this.onState);
    this.camera.off("warning", this.onWarning);
  }

  get mark() {
    return this.states.length;
  }

  since(mark) {
    return this.states.slice(mark);
  }

  /** Resolves with the first state named `name` at or after `from` (an index), or rejects after ms. */
  async waitFor(name, from = 0, ms = 15000) {
    const found = () => this.states.findIndex((s, k) => k >= from && s.state === name) + 1;
    const i = (await until(found, { ms }).catch(() => 0)) - 1;
    if (i >= 0) return { index: i, state: this.states[i] };
    const seen = this.since(from).map((s) => s.state + (s.error ? ` (${s.error})` : ""));
    throw new Error(`camera never reached ${name}; states: ${seen.join(" -> ") || "none"}`);
  }

  /**
   * Every failure state from `from` on announced a retry within the schedule: the n-th failure in a row
   * waits min(max, first * 2^n) +-20%, never above max (a `failed` config error waits the maximum).
   */
  assertBackoffSchedule(from = 0) {
    const { backoffFirstMs, backoffMaxMs } = this.camera.options;
    let n = 0;
    for (const s of this.since(from)) {
      if (s.state === "streaming") n = 0;
      if (!FAILURE_STATES.has(s.state)) continue;
      const base = s.state === "failed" ? backoffMaxMs : Math.min(backoffMaxMs, backoffFirstMs * 2 ** n);
      assert.ok(
        s.retryInMs >= Math.floor(base * 0.8) && s.retryInMs <= Math.min(backoffMaxMs, Math.ceil(base * 1.2)),
        `failure ${n + 1} in a row (${s.state}: ${s.error}) waits ${s.retryInMs} ms, schedule says ${base} ms +-20%, at most ${backoffMaxMs}`,
      );
      n++;
    }
  }

  /**
   * The camera was reachable again from `upAt` (epoch ms): no connection attempt that started after that
   * failed, and streaming came back no later than the retry that was pending then, plus `slackMs` to
   * connect. Returns the recovery time in ms.
   */
  assertRecoveredAfter(upAt, from = 0, slackMs = 3000) {
    const states = this.since(from);
    const back = states.find((s) => s.state === "streaming" && s.at >= upAt);
    assert.ok(back, `no streaming state after the camera came back; states: ${states.map((s) => s.state)}`);
    let attemptStart = null;
    let pendingRetryAt = upAt;
    for (const s of states) {
      if (s.at > back.at) break;
      if (s.state === "connecting") attemptStart = s.at;
      if (FAILURE_STATES.has(s.state) || s.state === "auth-failed") {
        assert.ok(
          attemptStart === null || attemptStart < upAt,
          `an attempt started ${attemptStart - upAt} ms after the camera was back failed: ${s.error}`,
        );
        pendingRetryAt = Math.max(upAt, s.at + (s.retryInMs ?? 0));
      }
    }
    const recovery = back.at - upAt;
    assert.ok(
      back.at <= pendingRetryAt + slackMs,
      `streaming ${recovery} ms after the camera was back; the pending retry was due at +${pendingRetryAt - upAt} ms`,
    );
    return recovery;
  }
}

module.exports = { SupervisionLog };
