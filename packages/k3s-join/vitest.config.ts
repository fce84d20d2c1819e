import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/**/*.live.test.ts"],
    environment: "node",
    passWithNoTests: true,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // the SSH client reports every host key it records (accept-new); not useful in test output
    onConsoleLog: (log) => !log.includes("ssh: added ")
  }
})
