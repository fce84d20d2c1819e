import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.live.test.ts"],
    environment: "node",
    passWithNoTests: true,
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
