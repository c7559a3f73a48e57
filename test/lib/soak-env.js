// Short or long: `npm test` runs every reliability suite briefly; `npm run test:soak` sets CAMRELAY_SOAK=1
// and the same suites run their long versions (more cases, more cycles, longer runs).
"use strict";
const v8 = require("v8");
const vm = require("vm");

const SOAK = /^(1|true|yes)$/i.test(process.env.CAMRELAY_SOAK || "");

/** `short` in `npm test`, `long` in the soak run. */
function pick(short, long) {
  return SOAK ? long : short;
}

/** Runs a full garbage collection when the runtime allows it (returns false when it cannot). */
let gcFn;
function gc() {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString("--expose_gc");
      gcFn = vm.runInNewContext("gc");
    } catch {
      gcFn = null;
    }
  }
  if (!gcFn) return false;
  gcFn();
  gcFn();
  return true;
}

/** Memory after a full collection, in bytes: rss, heapUsed, external and arrayBuffers. */
function memoryAfterGc() {
  gc();
  return process.memoryUsage();
}

const MB = 1024 * 1024;

/**
 * Collects what escapes to the process (uncaught exceptions, unhandled rejections) between start() and
 * stop(): the proof that a fault or a bad message could not have crashed Node-RED.
 */
function escapeWatch() {
  const escaped = [];
  const on = (err) => escaped.push(err);
  return {
    escaped,
    start() {
      process.on("uncaughtException", on);
      process.on("unhandledRejection", on);
    },
    stop() {
      process.off("uncaughtException", on);
      process.off("unhandledRejection", on);
    },
  };
}

module.exports = { SOAK, pick, gc, memoryAfterGc, MB, escapeWatch };
