import { execFileSync } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import { shellCommand, shellQuote } from "../src/index.js"

/** What a real POSIX shell makes of `printf %s <quoted>`: the exact bytes of the word after parsing. */
const throughSh = (quoted: string): Buffer => execFileSync("/bin/sh", ["-c", `printf %s ${quoted}`])

const hostile = [
  "",
  " ",
  "'",
  "''",
  "a'b",
  "'\\''",
  '"',
  "\\",
  "$(id)",
  "`id`",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal parameter expansion is the hostile input
  "${HOME}",
  "$HOME",
  "\n",
  "line1\nline2\n",
  "\t\r",
  "*",
  "?",
  "[a-z]*",
  "~",
  "~root",
  "a b  c",
  ";rm -rf /",
  "&& echo pwned",
  "| cat",
  "> /tmp/x",
  "#comment",
  "-n",
  "--",
  "%s%d",
  "é€😀",
  "\u202e\u0301",
  "!event",
  "{a,b}"
]

describe("shellQuote", () => {
  it("leaves safe words alone and single-quotes everything else", () => {
    assert.strictEqual(shellQuote("abc-1.2/x_y:z@h=v,w+%"), "abc-1.2/x_y:z@h=v,w+%")
    assert.strictEqual(shellQuote(""), "''")
    assert.strictEqual(shellQuote("a b"), "'a b'")
    assert.strictEqual(shellQuote("it's"), "'it'\\''s'")
    assert.strictEqual(shellQuote("$(id)"), "'$(id)'")
  })

  it("rejects NUL with a clear error", () => {
    assert.throws(() => shellQuote("a\u0000b"), /NUL/)
    assert.throws(() => shellCommand(["ok", "\u0000"]), /NUL/)
  })

  it("round-trips hostile strings through a real /bin/sh byte for byte", () => {
    for (const value of hostile) {
      assert.deepStrictEqual(throughSh(shellQuote(value)), Buffer.from(value, "utf8"), JSON.stringify(value))
    }
  })

  it("round-trips arbitrary strings through /bin/sh (property)", () => {
    const token = fc.oneof(
      fc.constantFrom(...hostile),
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.string({ unit: fc.constantFrom("'", '"', "\\", "$", "`", "(", ")", "\n", "*", "?", " ", "!", "~", "é") })
    )
    const value = fc.array(token, { maxLength: 4 }).map((parts) => parts.join("").replaceAll("\u0000", ""))
    // One shell for all samples (a shell per sample costs seconds on a busy machine): each word comes back
    // NUL-terminated, so the output splits into exactly the words the shell parsed.
    const seed = 20261205
    const samples = fc.sample(value, { numRuns: 120, seed })
    const output = execFileSync("/bin/sh", ["-c", `printf '%s\\0' ${samples.map(shellQuote).join(" ")}`])
    const words: Array<Buffer> = []
    let start = 0
    for (let i = 0; i < output.length; i++) {
      if (output[i] === 0) {
        words.push(output.subarray(start, i))
        start = i + 1
      }
    }
    assert.strictEqual(
      words.length,
      samples.length,
      `the shell parsed ${words.length} words from ${samples.length} (seed ${seed})`
    )
    samples.forEach((s, i) => {
      assert.deepStrictEqual(words[i], Buffer.from(s, "utf8"), `${JSON.stringify(s)} (seed ${seed})`)
    })
  })

  it("shellCommand keeps every argument one word", () => {
    const argv = ["printf", "%s|", "a b", "it's", "$(id)", "", "*"]
    const output = execFileSync("/bin/sh", ["-c", shellCommand(argv)]).toString("utf8")
    assert.strictEqual(output, "a b|it's|$(id)||*|")
  })
})
