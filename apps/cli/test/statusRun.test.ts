import { assert, describe, it } from "@effect/vitest"
import { renderStatus, type StatusRow } from "../src/commands/statusRun.js"

const row = (vm: string, more: Partial<StatusRow> = {}): StatusRow => ({
  node: "pve",
  vm,
  vmid: 100,
  state: "running",
  health: "healthy",
  detail: "",
  ip: "10.0.0.5",
  transport: "rest",
  ...more
})

describe("renderStatus", () => {
  it("marks a protected VM in the health column, and no other", () => {
    const table = renderStatus([
      row("a", { protected: ["pve"] }),
      row("b"),
      row("c", { health: "healthy (guest agent silent)", protected: ["pve", "safety.protect"] })
    ])
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colours the terminal would show
    const lines = table.replace(/\u001b\[[0-9;]*m/g, "").split("\n")
    assert.match(lines[1] ?? "", /^pve\s+a\s+100\s+running\s+healthy, protected\s+10\.0\.0\.5\s+rest$/)
    assert.match(lines[2] ?? "", /^pve\s+b\s+100\s+running\s+healthy\s+10\.0\.0\.5\s+rest$/)
    assert.match(lines[3] ?? "", /^pve\s+c\s+100\s+running\s+healthy \(guest agent silent\), protected\s+10\.0\.0\.5/)
    // the columns stay aligned: the IP column starts at the same offset on every row
    const at = lines.slice(1).map((l) => l.indexOf("10.0.0.5"))
    assert.deepStrictEqual(new Set(at).size, 1, table)
  })
})
