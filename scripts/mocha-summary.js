// `node scripts/mocha-summary.js NAME LOG... [--runs N] [--expect TEXT]... [--quiet]`: reads mocha's closing
// summary (spec or dot reporter: "N passing (T)", then "N pending" and "N failing" when non-zero) from each
// log, ANSI colours stripped, and fails (exit 1) unless every log holds exactly the expected number of
// summaries (--runs, 1 by default) with at least one test passing, none pending (skipped) and none failing,
// and every --expect text occurs. A run that crashed before its summary has none and fails too.
// Prints "NAME: P passed, F failed, S skipped" (with --quiet only that line, and exit 0 for any result).
"use strict";
const fs = require("fs");

const args = process.argv.slice(2);
const name = args.shift();
const logs = [];
const expects = [];
let runs = 1;
let quiet = false;
while (args.length) {
  const a = args.shift();
  if (a === "--runs") runs = Number(args.shift());
  else if (a === "--expect") expects.push(args.shift());
  else if (a === "--quiet") quiet = true;
  else logs.push(a);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
const problems = [];
const total = { passed: 0, failed: 0, skipped: 0 };

for (const log of logs) {
  let text = "";
  try {
    text = fs.readFileSync(log, "utf8").replace(ANSI, "").replace(/\r/g, "");
  } catch (err) {
    problems.push(`${log}: ${err.message}`);
    continue;
  }
  const lines = text.split("\n");
  const summaries = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*(\d+) passing \((\d+(?:\.\d+)?(?:ms|s|m|h))\)\s*$/.exec(lines[i]);
    if (!m) continue;
    const s = { passing: Number(m[1]), pending: 0, failing: 0, line: i + 1 };
    // the pending and failing counts follow directly (mocha prints no other line in between)
    for (let j = i + 1; j < Math.min(lines.length, i + 3); j++) {
      const n = /^\s*(\d+) (pending|failing)\s*$/.exec(lines[j]);
      if (n) s[n[2]] = Number(n[1]);
    }
    summaries.push(s);
  }
  for (const s of summaries) {
    total.passed += s.passing;
    total.failed += s.failing;
    total.skipped += s.pending;
    const where = `${log}:${s.line}`;
    if (s.passing === 0) problems.push(`${where}: no test passed`);
    if (s.pending) problems.push(`${where}: ${s.pending} pending (skipped)`);
    if (s.failing) problems.push(`${where}: ${s.failing} failing`);
  }
  if (!quiet && summaries.length !== runs)
    problems.push(
      `${log}: ${summaries.length} mocha summaries, expected ${runs} (a run crashed or never ran?)`,
    );
  for (const e of expects) if (!text.includes(e)) problems.push(`${log}: "${e}" not found`);
}

console.log(`${name}: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
if (!quiet) for (const p of problems) console.log(`  ${name}: ${p}`);
process.exit(!quiet && problems.length ? 1 : 0);
