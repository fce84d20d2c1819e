import { assert, describe, it } from "@effect/vitest"
import { readsStdin, runLine, splitWords, tokenize } from "../src/internal/Shell.js"

describe("Shell", () => {
  it("splits words like a POSIX shell (quotes, escapes)", () => {
    assert.deepStrictEqual(splitWords(`qm set 101 --description 'it'\\''s "fine"' --name a\\ b`), [
      "qm",
      "set",
      "101",
      "--description",
      `it's "fine"`,
      "--name",
      "a b"
    ])
    assert.deepStrictEqual(splitWords(`echo "a \\"b\\" \\$c" ''`), ["echo", 'a "b" $c', ""])
    assert.throws(() => tokenize("echo 'open"), /unexpected EOF/)
  })

  it("recognises operators and redirections", () => {
    assert.deepStrictEqual(tokenize("a && b || c; d | e > f 2>&1 2>/dev/null"), [
      { word: "a" },
      { op: "&&" },
      { word: "b" },
      { op: "||" },
      { word: "c" },
      { op: ";" },
      { word: "d" },
      { op: "|" },
      { word: "e" },
      { op: ">" },
      { word: "f" },
      { op: "2>&1" },
      { op: "2>" },
      { word: "/dev/null" }
    ])
  })

  it("knows which command lines read stdin", () => {
    assert.isTrue(readsStdin("install -m 0644 /dev/stdin /var/lib/vz/snippets/u.yaml"))
    assert.isTrue(readsStdin("cat > /var/lib/vz/snippets/u.yaml"))
    assert.isTrue(readsStdin("sudo -n tee /etc/rancher/k3s/config.yaml"))
    assert.isTrue(readsStdin("qm guest exec 100 --pass-stdin -- cat"))
    assert.isFalse(readsStdin("cat /etc/machine-id"))
    assert.isFalse(readsStdin("qm list"))
    assert.isFalse(readsStdin("cat < /etc/hosts"))
  })

  it("runs and-or lists, pipes and redirections against a host", async () => {
    const files = new Map<string, Buffer>()
    const host = {
      run: async (argv: ReadonlyArray<string>, stdin: Buffer) => {
        if (argv[0] === "echo") return { stdout: `${argv.slice(1).join(" ")}\n`, stderr: "", code: 0 }
        if (argv[0] === "upper") return { stdout: stdin.toString().toUpperCase(), stderr: "", code: 0 }
        if (argv[0] === "fail") return { stdout: "", stderr: "boom\n", code: 3 }
        return { stdout: "", stderr: `bash: ${argv[0]}: command not found\n`, code: 127 }
      },
      readFile: (p: string) => files.get(p),
      writeFile: (p: string, d: Buffer, append: boolean) => {
        files.set(p, append ? Buffer.concat([files.get(p) ?? Buffer.alloc(0), d]) : d)
        return undefined
      }
    }
    const r1 = await runLine("echo hi | upper && fail || echo recovered", host, Buffer.alloc(0))
    assert.deepStrictEqual([r1.stdout.toString(), r1.stderr, r1.code], ["HI\nrecovered\n", "boom\n", 0])
    const r2 = await runLine("echo a > /f; echo b >> /f; upper < /f", host, Buffer.alloc(0))
    assert.deepStrictEqual([r2.stdout.toString(), r2.code], ["A\nB\n", 0])
    const r3 = await runLine("fail 2>&1", host, Buffer.alloc(0))
    assert.deepStrictEqual([r3.stdout.toString(), r3.stderr, r3.code], ["boom\n", "", 3])
    const r4 = await runLine("fail && echo never", host, Buffer.alloc(0))
    assert.deepStrictEqual([r4.stdout.toString(), r4.code], ["", 3])
  })
})
