/** A small POSIX-ish shell: word splitting with quotes and escapes, `;` `&&` `||` `|`, and `<` `>` `>>` `2>` `2>&1`. */

export type Token = { readonly word: string } | { readonly op: string }

export const tokenize = (line: string): Array<Token> => {
  const out: Array<Token> = []
  let cur = ""
  let inWord = false
  let i = 0
  const push = () => {
    if (inWord) out.push({ word: cur })
    cur = ""
    inWord = false
  }
  while (i < line.length) {
    const c = line[i] as string
    if (c === "'") {
      const end = line.indexOf("'", i + 1)
      if (end < 0) throw new Error("unexpected EOF while looking for matching `''")
      cur += line.slice(i + 1, end)
      inWord = true
      i = end + 1
    } else if (c === '"') {
      i++
      inWord = true
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && i + 1 < line.length && '$`"\\\n'.includes(line[i + 1] as string)) {
          if (line[i + 1] !== "\n") cur += line[i + 1]
          i += 2
        } else {
          cur += line[i]
          i++
        }
      }
      if (i >= line.length) throw new Error("unexpected EOF while looking for matching `\"'")
      i++
    } else if (c === "\\") {
      if (i + 1 < line.length && line[i + 1] !== "\n") {
        cur += line[i + 1]
        inWord = true
      }
      i += 2
    } else if (c === " " || c === "\t" || c === "\n") {
      push()
      i++
    } else if (c === ";" || c === "|" || c === "&" || c === "<" || c === ">") {
      // `2>` / `2>&1` / `1>`
      if (c === ">" && inWord && /^[0-9]$/.test(cur)) {
        const fd = cur
        cur = ""
        inWord = false
        if (line.slice(i, i + 3) === ">&1" || line.slice(i, i + 3) === ">&2") {
          out.push({ op: `${fd}>&${line[i + 2]}` })
          i += 3
        } else {
          out.push({ op: `${fd}>` })
          i++
        }
        continue
      }
      push()
      const two = line.slice(i, i + 2)
      if (two === "&&" || two === "||" || two === ">>") {
        out.push({ op: two })
        i += 2
      } else {
        out.push({ op: c })
        i++
      }
    } else {
      cur += c
      inWord = true
      i++
    }
  }
  push()
  return out
}

/** Split a command line into words only (no operators allowed; they become words). */
export const splitWords = (line: string): Array<string> => tokenize(line).map((t) => ("word" in t ? t.word : t.op))

export interface ExecResult {
  stdout: string | Buffer
  stderr: string
  code: number
}

export interface ShellHost {
  run(argv: ReadonlyArray<string>, stdin: Buffer): Promise<ExecResult>
  readFile(path: string): Buffer | undefined
  writeFile(path: string, data: Buffer, append: boolean): string | undefined
}

interface Simple {
  argv: Array<string>
  stdinFile?: string
  stdoutFile?: { path: string; append: boolean }
  stderr: "keep" | "null" | "stdout"
}

const toBuf = (x: string | Buffer): Buffer => (typeof x === "string" ? Buffer.from(x, "utf8") : x)

/** Run a full command line. `stdin` is the session's stdin (given to the first command of the first pipeline). */
export const runLine = async (line: string, host: ShellHost, stdin: Buffer): Promise<ExecResult> => {
  let tokens: Array<Token>
  try {
    tokens = tokenize(line)
  } catch (e) {
    return { stdout: "", stderr: `bash: -c: line 1: ${(e as Error).message}\n`, code: 2 }
  }
  // split into and-or lists
  const stdoutAll: Array<Buffer> = []
  let stderrAll = ""
  let code = 0
  let i = 0
  let connector = ";"
  let stdinUsed = false
  while (i < tokens.length) {
    const pipeline: Array<Simple> = []
    let simple: Simple = { argv: [], stderr: "keep" }
    for (; i < tokens.length; i++) {
      const t = tokens[i] as Token
      if ("word" in t) {
        simple.argv.push(t.word)
        continue
      }
      if (t.op === "|") {
        pipeline.push(simple)
        simple = { argv: [], stderr: "keep" }
        continue
      }
      if (t.op === ">" || t.op === ">>" || t.op === "1>" || t.op === "<" || t.op === "2>") {
        const target = tokens[i + 1]
        if (target === undefined || !("word" in target))
          return {
            stdout: Buffer.concat(stdoutAll),
            stderr: `${stderrAll}bash: syntax error near unexpected token \`newline'\n`,
            code: 2
          }
        i++
        if (t.op === "<") simple.stdinFile = target.word
        else if (t.op === "2>") simple.stderr = target.word === "/dev/null" ? "null" : "keep"
        else simple.stdoutFile = { path: target.word, append: t.op === ">>" }
        continue
      }
      if (t.op === "2>&1") {
        simple.stderr = "stdout"
        continue
      }
      if (t.op === "1>&2") continue
      break
    }
    pipeline.push(simple)
    const op = tokens[i]
    const nextConnector = op !== undefined && "op" in op ? op.op : ";"
    i++
    const shouldRun = connector === ";" || (connector === "&&" && code === 0) || (connector === "||" && code !== 0)
    if (shouldRun && pipeline.some((s) => s.argv.length > 0)) {
      let input = stdinUsed ? Buffer.alloc(0) : stdin
      stdinUsed = true
      let last: ExecResult = { stdout: "", stderr: "", code: 0 }
      for (const s of pipeline) {
        if (s.stdinFile !== undefined) {
          const f = host.readFile(s.stdinFile)
          if (f === undefined) {
            last = { stdout: "", stderr: `bash: ${s.stdinFile}: No such file or directory\n`, code: 1 }
            input = Buffer.alloc(0)
            stderrAll += last.stderr
            continue
          }
          input = f
        }
        last = await host.run(s.argv, input)
        let out = toBuf(last.stdout)
        if (s.stderr === "stdout") {
          out = Buffer.concat([out, Buffer.from(last.stderr)])
        } else if (s.stderr === "keep") stderrAll += last.stderr
        if (s.stdoutFile !== undefined) {
          const err = host.writeFile(s.stdoutFile.path, out, s.stdoutFile.append)
          if (err !== undefined) {
            stderrAll += err
            last = { ...last, code: 1 }
          }
          out = Buffer.alloc(0)
        }
        input = out
      }
      stdoutAll.push(input)
      code = last.code
    }
    connector = nextConnector
  }
  return { stdout: Buffer.concat(stdoutAll), stderr: stderrAll, code }
}

/** Whether a command line reads the session's stdin (so the server must wait for EOF before running it). */
export const readsStdin = (line: string): boolean => {
  let tokens: Array<Token>
  try {
    tokens = tokenize(line)
  } catch {
    return false
  }
  const argv: Array<string> = []
  let redirectIn = false
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token
    if ("word" in t) {
      argv.push(t.word)
      continue
    }
    if (t.op === "<") {
      redirectIn = true
      continue
    }
    if (t.op === "|" || t.op === ";" || t.op === "&&" || t.op === "||") break
    if (t.op === ">" || t.op === ">>" || t.op === "1>" || t.op === "2>") i++ // skip the redirection target
  }
  if (redirectIn) return false
  const a = [...argv]
  while (a[0] === "sudo") {
    a.shift()
    while (a[0]?.startsWith("-")) a.shift()
  }
  const prog = (a[0] ?? "").split("/").pop() ?? ""
  const args = a.slice(1)
  if (args.includes("/dev/stdin") || args.includes("--pass-stdin")) return true
  if (prog === "tee") return true
  if (prog === "cat" && args.filter((x) => !x.startsWith("-") || x === "-").every((x) => x === "-")) return true
  if ((prog === "sh" || prog === "bash") && !args.includes("-c")) return true
  return false
}
