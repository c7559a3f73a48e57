// `node scripts/validate.js`: the Node-RED Flow Library's checks (`node-red-dev validate`) on this package,
// run after `npm run build` (the checks read the editor HTML beside the compiled nodes in dist/).
//
// Two checks read catalogue.nodered.org: P08 (a similar package name in another scope) and N01 (a node type
// name used by another package). On a machine that cannot reach it, node-red-dev stops at the first of them;
// here they are reported as "not checked (offline)" and every other check still runs. P06 and P07 read the
// npm registry. Exit code 1 when a check fails; a check that could not run does not fail the run.
"use strict";
const path = require("path");

const root = path.join(__dirname, "..");
const src = path.join(path.dirname(require.resolve("node-red-dev/package.json")), "src", "libs");
const axios = require(require.resolve("axios", { paths: [src] }));

const NETWORK_CHECKS = { "catalogue.nodered.org": ["P08", "N01"], "registry.npmjs.org": ["P06", "P07"] };
const skipped = new Map(); // check code -> why

// A request that cannot reach its host answers an empty catalogue and marks the checks that needed it.
const get = axios.get.bind(axios);
axios.get = async (url, ...rest) => {
  try {
    return await get(url, ...rest);
  } catch (err) {
    const host = new URL(url).hostname;
    if (err.response || !NETWORK_CHECKS[host]) throw err;
    for (const code of NETWORK_CHECKS[host])
      skipped.set(code, `${host} unreachable (${err.code || err.message})`);
    if (host === "catalogue.nodered.org") return { data: { modules: [] } };
    throw err;
  }
};

const lines = [];
const cli = {
  log: (text) => lines.push({ level: "log", text: String(text) }),
  warn: (text) => lines.push({ level: "warn", text: String(text) }),
  error: (err) => {
    throw err instanceof Error ? err : new Error(String(err));
  },
};

// Lines node-red-dev prints as passed for a check that did not really run.
const PASSED_WHEN_EMPTY = {
  P08: /No similar named packages found/,
  N01: /Nodes all have unique names/,
};

async function main() {
  const fs = require("fs");
  if (!fs.existsSync(path.join(root, "dist", "nodes", "camera-source.html"))) {
    throw new Error("dist/nodes is missing: run `npm run build` first");
  }
  const checkpackage = require(path.join(src, "checkpackage"));
  const checknodes = require(path.join(src, "checknodes"));
  const checkdeps = require(path.join(src, "checkdeps"));
  const scorecard = {};
  await checkpackage(root, cli, scorecard, false);
  await checknodes(root, cli, scorecard, false);
  await checkdeps(root, cli, scorecard, false);

  for (const { level, text } of lines) {
    const fake = [...skipped.keys()].find((code) => PASSED_WHEN_EMPTY[code]?.test(text));
    if (fake) continue;
    console.log(level === "warn" ? `⚠️  ${text}` : text);
  }
  for (const [code, why] of skipped) console.log(`⏭️  ${code} not checked: ${why}`);

  const failed = Object.entries(scorecard)
    .filter(([code, result]) => result && result.test === false && !skipped.has(code))
    .map(([code]) => code);
  console.log(
    failed.length
      ? `node-red-dev validate: failed ${failed.join(", ")}`
      : `node-red-dev validate: no failure (${Object.keys(scorecard).filter((c) => /^[A-Z]\d\d$/.test(c)).length} checks` +
          (skipped.size ? `, ${skipped.size} not checked offline: ${[...skipped.keys()].join(", ")})` : ")"),
  );
  process.exitCode = failed.length ? 1 : 0;
}

main().then(
  () => process.exit(),
  (err) => {
    console.error(`node-red-dev validate could not run: ${err.stack || err}`);
    process.exit(1);
  },
);
