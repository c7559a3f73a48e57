/* global process */
// Builds ui/ into resources/ui-camera.umd.js (run by scripts/build.js). Vue stays outside the bundle:
// Dashboard 2 provides it as window.Vue. The component's CSS goes inside the bundle, injected once on load,
// because Dashboard 2 loads only the script.
import path from "path";
import { fileURLToPath } from "url";
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Moves the emitted CSS into the UMD chunk as a <style> element added when the script runs. */
function cssInsideBundle() {
  return {
    name: "camrelay-css-inside-bundle",
    apply: "build",
    enforce: "post",
    generateBundle(_options, bundle) {
      const css = Object.keys(bundle).filter((k) => k.endsWith(".css"));
      const text = css.map((k) => String(bundle[k].source)).join("\n");
      for (const k of css) delete bundle[k];
      if (!text) return;
      const inject =
        `(function(){if(typeof document==="undefined")return;` +
        `var s=document.createElement("style");s.setAttribute("data-camrelay","ui-camera");` +
        `s.textContent=${JSON.stringify(text)};document.head.appendChild(s)})();\n`;
      for (const chunk of Object.values(bundle)) {
        if (chunk.type === "chunk" && chunk.isEntry) chunk.code = inject + chunk.code;
      }
    },
  };
}

export default defineConfig(({ mode }) => ({
  root: here,
  logLevel: "warn",
  plugins: [vue(), cssInsideBundle()],
  define: { "process.env.NODE_ENV": JSON.stringify(mode === "development" ? "development" : "production") },
  build: {
    outDir: process.env.CAMRELAY_UI_OUT || path.join(here, "..", "resources"),
    emptyOutDir: true,
    minify: true,
    sourcemap: false,
    lib: {
      entry: path.join(here, "index.js"),
      name: "ui-camera",
      formats: ["umd"],
      fileName: () => "ui-camera.umd.js",
    },
    rollupOptions: {
      external: ["vue"],
      output: { globals: { vue: "Vue" } },
    },
  },
}));
