import { defineConfig } from "tsup"

export default defineConfig({
  entry: ["src/main.ts", "src/withSimulator.ts"],
  format: ["esm"],
  platform: "node",
  target: "node22",
  dts: false,
  sourcemap: true,
  clean: true,
  // Import the workspace packages as installed (the simulator is a devDependency, which tsup would otherwise bundle).
  external: [/^@homelab\//]
})
