import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/index.ts", "src/bin.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false, // declarations come from `tsc -p tsconfig.build.json`
  sourcemap: true,
  clean: true
})
