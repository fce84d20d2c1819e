import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.live.test.ts"],
    environment: "node",
    passWithNoTests: true,
    // the end-to-end files mostly wait for the homelab processes they start and for simulated time: two files side by
    // side even on two cores (the default there is one at a time), at most four tests at once in each
    maxWorkers: 2,
    maxConcurrency: 4,
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
