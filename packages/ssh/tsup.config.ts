import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts", "src/testing/index.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // declarations come from `tsc -p tsconfig.build.json` (TypeScript 7 has no compiler API for tsup)
  sourcemap: false, // readable, unminified ESM: stack traces point at code worth reading; no maps to embed sources
  clean: true
})
