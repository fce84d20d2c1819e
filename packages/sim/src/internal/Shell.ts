/**
 * A small POSIX-ish shell: word splitting with quotes and escapes, `;` / newline `&&` `||` `|` `!`, `#` comments,
 * `<` `>` `>>` `2>` `2>&1`, `$?`, and the `exit` and `set -e` builtins.
 */

export type Token = { readonly word: string } | { readonly op: string }

/** Stands for an unexpanded `$?` inside a word (replaced by the last exit status when the command runs). */
const LAST_STATUS = "\uE000"

/** `${?}`, the braced form of `$?` */
const BRACED_STATUS = ["$", "{?}"].join("")

const expandStatus = (word: string, code: number): string =>
  word.includes(LAST_STATUS) ? word.replaceAll(LAST_STATUS, String(code)) : word

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
        if (line.startsWith("$?", i) || line.startsWith(BRACED_STATUS, i)) {
          cur += LAST_STATUS
          i += line[i + 1] === "?" ? 2 : 4
          continue
        }
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
    } else if (c === "$" && (line.startsWith("$?", i) || line.startsWith(BRACED_STATUS, i))) {
      cur += LAST_STATUS
      inWord = true
      i += line[i + 1] === "?" ? 2 : 4
    } else if (c === "#" && !inWord) {
      // a comment runs to the end of the line
      while (i < line.length && line[i] !== "\n") i++
    } else if (c === "\n") {
      push()
      // a newline ends a command, except right after `&&`, `||`, `|` or another separator
      const last = out[out.length - 1]
      if (last !== undefined && !("op" in last && ["&&", "||", "|", ";"].includes(last.op))) out.push({ op: ";" })
      i++
    } else if (c === " " || c === "\t") {
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
export const splitWords = (line: string): Array<string> =>
  tokenize(line).map((t) => ("word" in t ? t.word.replaceAll(LAST_STATUS, "$?") : t.op))

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
  let errexit = false
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
    // `! pipeline` negates its status
    const negate = pipeline[0]?.argv[0] === "!"
    if (negate) pipeline[0]?.argv.shift()
    if (shouldRun && pipeline.some((s) => s.argv.length > 0)) {
      for (const s of pipeline) {
        s.argv = s.argv.map((w) => expandStatus(w, code))
        if (s.stdinFile !== undefined) s.stdinFile = expandStatus(s.stdinFile, code)
        if (s.stdoutFile !== undefined) s.stdoutFile = { ...s.stdoutFile, path: expandStatus(s.stdoutFile.path, code) }
      }
      // the `exit` builtin ends the whole line (a pipeline's `exit` only ends its own subshell)
      const only = pipeline.length === 1 ? pipeline[0] : undefined
      if (only?.argv[0] === "exit") {
        const n = only.argv[1] === undefined ? code : Number.parseInt(only.argv[1], 10)
        if (only.argv[1] !== undefined && Number.isNaN(n))
          return {
            stdout: Buffer.concat(stdoutAll),
            stderr: `${stderrAll}sh: 1: exit: Illegal number: ${only.argv[1]}\n`,
            code: 2
          }
        return { stdout: Buffer.concat(stdoutAll), stderr: stderrAll, code: n & 255 }
      }
      // the `set` builtin: errexit (`-e`, `-o errexit`); other options are accepted and ignored
      if (only?.argv[0] === "set") {
        const a = only.argv.slice(1)
        for (let k = 0; k < a.length; k++) {
          const opt = a[k] as string
          if ((opt === "-o" || opt === "+o") && a[k + 1] === "errexit") errexit = opt === "-o"
          else if (/^-[a-z]*e/.test(opt)) errexit = true
          else if (/^\+[a-z]*e/.test(opt)) errexit = false
        }
        code = 0
        connector = nextConnector
        continue
      }
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
      code = negate ? (last.code === 0 ? 1 : 0) : last.code
      // set -e: a failing command that ends an and-or list (not negated) ends the script
      if (errexit && code !== 0 && !negate && nextConnector !== "&&" && nextConnector !== "||")
        return { stdout: Buffer.concat(stdoutAll), stderr: stderrAll, code }
    }
    connector = nextConnector
  }
  return { stdout: Buffer.concat(stdoutAll), stderr: stderrAll, code }
}

/** Options of command wrappers that take a value (`sudo -u root`, `flock -w 10`, `timeout -s KILL`). */
const WRAPPER_VALUE_OPTIONS: Readonly<Record<string, ReadonlyArray<string>>> = {
  sudo: ["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
  flock: ["-w", "--wait", "--timeout", "-E", "--conflict-exit-code"],
  timeout: ["-s", "--signal", "-k", "--kill-after"],
  nohup: [],
  env: ["-u", "--unset", "-C", "--chdir"]
}

/** The command a wrapper runs: `sudo -n X`, `env A=b X`, `flock -w 5 FILE X`, `timeout 60 X` → `X`. */
const unwrap = (argv: ReadonlyArray<string>): Array<string> => {
  let a = [...argv]
  for (;;) {
    while (a[0] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a[0])) a.shift()
    const prog = (a[0] ?? "").split("/").pop() ?? ""
    const valued = WRAPPER_VALUE_OPTIONS[prog]
    if (valued === undefined) return a
    a.shift()
    while (a[0]?.startsWith("-") === true && a[0] !== "-c") {
      const o = a.shift() as string
      if (valued.includes(o)) a.shift()
      if (o === "--") break
    }
    if (prog === "env") while (a[0] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*=/.test(a[0])) a.shift()
    if (prog === "flock") {
      a.shift() // the lock file
      if (a[0] === "-c" || a[0] === "--command") a = ["sh", "-c", ...a.slice(1)]
    }
    if (prog === "timeout") a.shift() // the duration
  }
}

/** Whether a command line reads the session's stdin (so the server must wait for EOF before running it). */
export const readsStdin = (line: string): boolean => {
  let tokens: Array<Token>
  try {
    tokens = tokenize(line)
  } catch {
    return false
  }
  const commands: Array<{ argv: Array<string>; redirectIn: boolean }> = [{ argv: [], redirectIn: false }]
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token
    const current = commands[commands.length - 1] as { argv: Array<string>; redirectIn: boolean }
    if ("word" in t) {
      current.argv.push(t.word)
      continue
    }
    if (t.op === "<") {
      current.redirectIn = true
      i++
      continue
    }
    if (t.op === ">" || t.op === ">>" || t.op === "1>" || t.op === "2>") {
      i++ // skip the redirection target
      continue
    }
    if (t.op === "|" || t.op === ";" || t.op === "&&" || t.op === "||") {
      // only the first command of a pipeline reads the session's stdin
      commands.push({ argv: [], redirectIn: t.op === "|" })
    }
  }
  return commands.some((c) => !c.redirectIn && commandReadsStdin(unwrap(c.argv)))
}

const commandReadsStdin = (a: ReadonlyArray<string>): boolean => {
  const prog = (a[0] ?? "").split("/").pop() ?? ""
  const args = a.slice(1)
  if ((prog === "sh" || prog === "bash") && args[0] === "-c") return args[1] !== undefined && readsStdin(args[1])
  if (args.includes("/dev/stdin") || args.includes("--pass-stdin")) return true
  if (prog === "tee") return true
  if (prog === "cat" && args.filter((x) => !x.startsWith("-") || x === "-").every((x) => x === "-")) return true
  if ((prog === "sh" || prog === "bash") && !args.includes("-c")) return true
  return false
}
