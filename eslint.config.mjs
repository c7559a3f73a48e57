import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "dist.*/**", "resources/**", "resources.*/**", "node_modules/**", "docs/**", "coverage/**", "test/fixtures/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The core and the adapters alike: messages are built by nodes/lib/messages/, never cast.
    files: ["nodes/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "error" },
  },
  {
    files: ["test/**/*.js", "bench/**/*.js", "scripts/**/*.js"],
    languageOptions: {
      sourceType: "commonjs",
      globals: {
        require: "readonly", module: "writable", process: "readonly", __dirname: "readonly",
        console: "readonly", Buffer: "readonly", setTimeout: "readonly", clearTimeout: "readonly",
        setInterval: "readonly", clearInterval: "readonly", setImmediate: "readonly",
        describe: "readonly", it: "readonly", before: "readonly", after: "readonly",
        beforeEach: "readonly", afterEach: "readonly", URL: "readonly", global: "writable",
        fetch: "readonly", AbortController: "readonly", performance: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-require-imports": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
    },
  },
  {
    // The <camrelay-player> element: plain browser JavaScript shipped as it is (no build step).
    files: ["nodes/lib/serve/player/**/*.js"],
    languageOptions: {
      sourceType: "script",
      globals: {
        window: "readonly", document: "readonly", location: "readonly", HTMLElement: "readonly", Image: "readonly",
        customElements: "readonly", CustomEvent: "readonly", URL: "readonly", Blob: "readonly",
        WebSocket: "readonly", MediaSource: "readonly", MediaStream: "readonly", fetch: "readonly",
        RTCPeerConnection: "readonly", AbortController: "readonly", IntersectionObserver: "readonly", createImageBitmap: "readonly",
        setTimeout: "readonly", clearTimeout: "readonly", setInterval: "readonly", clearInterval: "readonly",
        console: "readonly",
      },
    },
  },
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
);
