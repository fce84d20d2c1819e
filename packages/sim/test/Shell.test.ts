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

  const echoHost = () => {
    const files = new Map<string, Buffer>()
    return {
      files,
      run: async (argv: ReadonlyArray<string>, stdin: Buffer) => {
        if (argv[0] === "echo") return { stdout: `${argv.slice(1).join(" ")}\n`, stderr: "", code: 0 }
        if (argv[0] === "read") return { stdout: stdin.toString(), stderr: "", code: 0 }
        if (argv[0] === "fail") return { stdout: "", stderr: "", code: Number(argv[1] ?? 1) }
        if (argv[0] === "true") return { stdout: "", stderr: "", code: 0 }
        return { stdout: "", stderr: `sh: 1: ${argv[0]}: not found\n`, code: 127 }
      },
      readFile: (p: string) => files.get(p),
      writeFile: (p: string, d: Buffer) => {
        files.set(p, d)
        return undefined
      }
    }
  }

  it("expands $? (unquoted and in double quotes, not in single quotes) to the last exit status", async () => {
    const r = await runLine(`fail 3; echo $? "s=\${?}" '$?'; true; echo $?`, echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([r.stdout.toString(), r.code], ["3 s=3 $?\n0\n", 0])
    const p = await runLine("fail 4 | echo x; echo $?", echoHost(), Buffer.alloc(0))
    assert.strictEqual(p.stdout.toString(), "x\n0\n")
    assert.deepStrictEqual(splitWords("echo $?"), ["echo", "$?"])
  })

  it("runs multi-line scripts: newlines end commands (not after && || |), # starts a comment", async () => {
    const script = "echo a # a comment\nfail 2 &&\n  echo never\necho b ||\n  echo never\n# only a comment\necho $?"
    const r = await runLine(script, echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([r.stdout.toString(), r.code], ["a\nb\n0\n", 0])
    assert.strictEqual(
      (await runLine("echo 'x # y'\necho \"a\nb\"", echoHost(), Buffer.alloc(0))).stdout.toString(),
      "x # y\na\nb\n"
    )
  })

  it("has the exit builtin and ! negation", async () => {
    const r = await runLine("echo a; exit 7; echo never", echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([r.stdout.toString(), r.code], ["a\n", 7])
    const last = await runLine("fail 5; exit", echoHost(), Buffer.alloc(0))
    assert.strictEqual(last.code, 5)
    const bad = await runLine("exit x", echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([bad.stderr, bad.code], ["sh: 1: exit: Illegal number: x\n", 2])
    const neg = await runLine("! fail 1 && echo negated; ! true || echo also", echoHost(), Buffer.alloc(0))
    assert.strictEqual(neg.stdout.toString(), "negated\nalso\n")
  })

  it("set -e ends a script at a failing command, not at one that is tested by && or ||", async () => {
    const script = "set -e\nfail 2 || echo tolerated\nfail 3 && echo never\necho still\nfail 4\necho never"
    const r = await runLine(script, echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([r.stdout.toString(), r.code], ["tolerated\nstill\n", 4])
    const off = await runLine("set -e; set +e; fail 5; echo on", echoHost(), Buffer.alloc(0))
    assert.deepStrictEqual([off.stdout.toString(), off.code], ["on\n", 0])
    // `set` does not take the session's stdin: the first real command does
    const stdin = await runLine("set -e\nread", echoHost(), Buffer.from("data"))
    assert.strictEqual(stdin.stdout.toString(), "data")
  })

  it("sees stdin readers behind wrappers (sudo, env, flock, timeout) and inside sh -c scripts", () => {
    assert.isTrue(
      readsStdin("sudo -n flock -w 600 -E 75 /run/lock/x sh -c 'install -D -m 600 /dev/stdin /etc/f && true'")
    )
    assert.isTrue(readsStdin("sudo -n env A=b timeout 60 tee /etc/x"))
    assert.isTrue(readsStdin("echo a; sudo -n install -m 600 /dev/stdin /etc/f"))
    assert.isTrue(readsStdin("flock /run/lock/x -c 'cat > /etc/f'"))
    assert.isFalse(readsStdin("sudo -n flock -w 5 /run/lock/x sh -c 'cat /etc/f; echo done'"))
    assert.isFalse(readsStdin("echo a | cat"))
  })
})
