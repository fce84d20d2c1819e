import { defineConfig } from "tsup"

// The published `homelab` is self-contained: every library it uses (ours, effect, ssh2, yaml, undici, …) is bundled and
// tree-shaken, so `npm i -g @homelab/cli` installs one package with no dependencies and no install scripts (ssh2's
// optional native build, cpu-features, is never fetched; ssh2 runs on Node's crypto).
//
// Code splitting keeps start-up small: `bin.js` → `main.js` loads the command definitions only; each command's code
// is a chunk behind a dynamic `import()` (commands/*Run.ts), so `--version` and `--help` never load the Proxmox or
// SSH clients, and only `demo` loads the simulator.
export default defineConfig({
  // index.ts is for this repo's benches (not published, see package.json#files).
  entry: ["src/bin.ts", "src/main.ts", "src/index.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // nothing to declare: the package has no exports, only the `homelab` bin
  sourcemap: false,
  clean: true,
  splitting: true,
  minifySyntax: true,
  minifyWhitespace: true,
  // Everything is bundled but ssh2's optional native bindings: ssh2 requires them in a try/catch and falls back to
  // pure JS, so they stay unresolved (cpu-features is never installed; sshcrypto.node is never built).
  noExternal: [/^(?!cpu-features$)(?!.*\.node$)/],
  external: ["cpu-features", /\.node$/],
  // Bundled CommonJS dependencies (ssh2) call require() and read __dirname: give the ESM chunks both.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url); const __dirname = import.meta.dirname;'
  }
})
