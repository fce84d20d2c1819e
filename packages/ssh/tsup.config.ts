import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts", "src/testing/index.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // declarations come from `tsc -p tsconfig.build.json` (TypeScript 7 has no compiler API for tsup)
  sourcemap: true,
  clean: true
})
