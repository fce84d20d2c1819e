/**
 * Whether someone can answer a prompt: stdin and stdout are a terminal and `CI=true` is not set (cron, CI). Where not,
 * the commands never ask, and what they would ask about needs `--yes`.
 */
export const isInteractive = (): boolean =>
  process.stdout.isTTY === true && process.stdin.isTTY === true && process.env.CI !== "true"
