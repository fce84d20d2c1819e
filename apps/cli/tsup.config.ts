import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts", "src/main.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // declarations come from `tsc -p tsconfig.build.json`
  sourcemap: true,
  clean: true,
  // One file to load instead of hundreds: the CLI starts in a fraction of the time. ssh2 stays external (CommonJS with
  // optional native bindings it probes at run time).
  noExternal: [/.*/],
  esbuildOptions(options) {
    options.external = ["ssh2", "cpu-features", "./main.js"]
  },
  // Bundled CommonJS dependencies call require(): give the ESM bundle one.
  banner: {
    js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);'
  },
  splitting: false
})
