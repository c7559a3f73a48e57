// `npm run bench`: runs every bench/*.js that exports run() (sync or async, returning rows of plain
// objects), one after another, and prints one table: the machine, then per row the bench, the case (its
// text fields) and its numbers. A bench that is missing, does not export run() or fails is listed as such;
// the others still run. Options:
//   --only parser,stream-out    run these benches only (file names without .js)
//   --json results.json         also write { machine, results } as JSON (docs/benchmarks.md is made from it)
//   --opts '{"stream-out": {"duration": 10}}'   options handed to a bench's run()
//   --detail                    also print each bench's own table (its print()/printTable())
// Benchmarks print numbers; they never assert timings.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Where it ran: what a number means depends on it. */
function machine() {
  let model = os.cpus()[0]?.model ?? "unknown CPU";
  try {
    model = /model name\s*:\s*(.*)/.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? model;
  } catch {
    // not Linux
  }
  return {
    cpus: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    model: model.trim(),
    memoryGB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  };
}

/** The benches: every bench/*.js but this file, sorted, optionally filtered. */
function benches(only) {
  const dir = __dirname;
  const names = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".js") && f !== "run.js")
    .map((f) => f.slice(0, -3))
    .sort();
  if (!only) return names;
  const wanted = only.split(",").map((s) => s.trim());
  return [...wanted.filter((n) => !names.includes(n)), ...names.filter((n) => wanted.includes(n))];
}

function format(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(+v.toFixed(3));
  if (typeof v === "boolean") return v ? "yes" : "no";
  return String(v);
}

/** One table row per result row: the text fields name the case, the numbers are the results. */
function summarize(bench, row) {
  if (row === null || typeof row !== "object") return { bench, case: "", numbers: format(row) };
  const text = [];
  const numbers = [];
  for (const [k, v] of Object.entries(row)) {
    if (v === undefined || v === null || typeof v === "object") continue;
    if (typeof v === "string") text.push(v);
    else numbers.push(`${k}=${format(v)}`);
  }
  return { bench, case: text.join(" / "), numbers: numbers.join("  ") };
}

function printTable(lines) {
  const cols = ["bench", "case", "numbers"];
  const cells = [cols, ...lines.map((l) => cols.map((c) => l[c]))];
  const widths = cols.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  widths[2] = 0; // the last column is not padded
  for (const [i, r] of cells.entries()) {
    console.log(
      r
        .map((c, j) => (j < 2 ? c.padEnd(widths[j]) : c))
        .join("  ")
        .trimEnd(),
    );
    if (i === 0) console.log(widths.map((w, j) => "-".repeat(j < 2 ? w : 40)).join("  "));
  }
}

async function main() {
  const only = arg("only");
  const jsonFile = arg("json");
  const opts = arg("opts") ? JSON.parse(arg("opts")) : {};
  const detail = process.argv.includes("--detail");
  const m = machine();
  console.log(`${m.cpus} x ${m.model}, ${m.memoryGB} GB, Node ${m.node}, ${m.platform}, ${m.date}\n`);
  const results = {};
  const lines = [];
  for (const name of benches(only)) {
    const file = path.join(__dirname, `${name}.js`);
    let mod;
    try {
      if (!fs.existsSync(file)) throw new Error("no such bench");
      mod = require(file);
    } catch (err) {
      results[name] = { status: "missing", error: err.message };
      lines.push({ bench: name, case: "(not run)", numbers: `missing: ${err.message.split("\n")[0]}` });
      continue;
    }
    if (typeof mod.run !== "function") {
      results[name] = { status: "skipped", error: "exports no run()" };
      lines.push({ bench: name, case: "(not run)", numbers: "exports no run()" });
      continue;
    }
    const t0 = Date.now();
    console.log(`running ${name} ...`);
    try {
      const rows = await mod.run(opts[name] ?? {});
      const list = Array.isArray(rows) ? rows : [rows];
      results[name] = { status: "ok", seconds: (Date.now() - t0) / 1000, rows: list };
      for (const row of list) lines.push(summarize(name, row));
      if (detail) {
        const printer = mod.print ?? mod.printTable;
        if (typeof printer === "function") printer(list);
      }
    } catch (err) {
      results[name] = { status: "failed", error: String(err?.stack ?? err) };
      lines.push({ bench: name, case: "(failed)", numbers: String(err?.message ?? err).split("\n")[0] });
    }
  }
  console.log("");
  printTable(lines);
  if (jsonFile) {
    fs.writeFileSync(jsonFile, JSON.stringify({ machine: m, results }, null, 2) + "\n");
    console.log(`\nwrote ${jsonFile}`);
  }
  if (Object.values(results).some((r) => r.status === "failed")) process.exitCode = 1;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}

module.exports = { machine, summarize };
