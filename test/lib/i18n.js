// node-red-node-test-helper replaces RED._ with the identity function, so statuses would read as
// message keys. This installs a translator backed by the package's real en-US catalogs instead.
"use strict";
const fs = require("fs");
const path = require("path");

const dir = path.join(__dirname, "..", "..", "locales", "en-US");
const catalog = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) {
  Object.assign(catalog, JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
}

function translate(key, params = {}) {
  const value = key.split(".").reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), catalog);
  if (typeof value !== "string") return key;
  return value.replace(/__(\w+)__/g, (_m, name) => (name in params ? String(params[name]) : `__${name}__`));
}

/** Call once after helper.init(). */
function useCatalogs(helper) {
  const util = helper._registryUtil;
  if (!util || util.__camrelayI18n) return;
  const create = util.createNodeApi.bind(util);
  util.createNodeApi = (...args) => {
    const red = create(...args);
    Object.defineProperty(red, "_", { get: () => translate, set: () => {}, configurable: true });
    return red;
  };
  util.__camrelayI18n = true;
}

module.exports = { useCatalogs, translate };
