import type { ApiRouter } from "./ApiRouter.js"
import type { AuthUser } from "./Auth.js"
import { canonicalJson, parseCliArgs, prettyJson } from "./internal/CliOutput.js"
import { textOutput } from "./internal/CliTable.js"
import type { ExecOutcome } from "./internal/SshServer.js"
import { PveError } from "./PveError.js"
import type { SimState } from "./SimState.js"
import { parseUpid, type Task, taskSucceeded } from "./Tasks.js"

export const CLI_ROOT: AuthUser = { authuser: "root@pam", via: "cli" }

const VERBS: Record<string, string> = { get: "GET", ls: "GET", set: "PUT", create: "POST", delete: "DELETE" }

/** Format a PVE error the way the CLI prints it on stderr. */
export const cliError = (e: unknown, usage?: string): string => {
  if (e instanceof PveError) {
    if (e.errors !== undefined) {
      const lines = Object.entries(e.errors).map(([k, v]) => `${k}: ${v.replace(/\n$/, "")}`)
      return `${e.status} ${e.message}\n${lines.join("\n")}\n${usage !== undefined ? `${usage}\n` : ""}`
    }
    if (e.status === 500) return e.message.endsWith("\n") ? e.message : `${e.message}\n`
    return `${e.status} ${e.message.replace(/\n$/, "")}\n`
  }
  return `${(e as Error).message}\n`
}

/** Find the task behind a UPID result (workers run synchronously in CLI context). */
export const taskOf = (state: SimState, data: unknown): Task | undefined => {
  if (typeof data !== "string") return undefined
  const p = parseUpid(data)
  if (p === undefined) return undefined
  return state.getNode(p.node)?.tasks.get(data)
}

/** Task output as the CLI tees it: log lines without the final TASK line; error / warnings on stderr. */
export const taskOutput = (t: Task): { stdout: string; stderr: string } => {
  const lines = t.log.slice(0, -1)
  if (lines.at(-1) === "" && !taskSucceeded(t)) lines.pop()
  else if (lines.at(-1) === "" && t.warnings > 0) lines.pop()
  const stdout = lines.length > 0 ? `${lines.join("\n")}\n` : ""
  let stderr = ""
  if (!taskSucceeded(t)) stderr = `${t.exitstatus ?? "unexpected status"}\n`
  else if (t.warnings > 0) stderr = `Task finished with ${t.warnings} warning(s)!\n`
  return { stdout, stderr }
}

/** `pvesh get|set|create|delete|ls PATH [--k v]... [--output-format json|json-pretty|text]`. */
export const runPvesh = async (
  router: ApiRouter,
  state: SimState,
  localNode: string,
  args: ReadonlyArray<string>
): Promise<ExecOutcome> => {
  const verb = args[0]
  const path = args[1]
  if (verb === undefined || VERBS[verb] === undefined || path === undefined)
    return {
      stdout: "",
      stderr: `ERROR: unknown command 'pvesh ${args.join(" ")}'\nUSAGE: pvesh <COMMAND> [ARGS] [OPTIONS]\n`,
      code: 255
    }
  const method = VERBS[verb] as string
  const { options } = parseCliArgs(args.slice(2))
  const format = (options["output-format"] as string | undefined) ?? "text"
  delete options["output-format"]
  delete options.noproxy
  delete options.quiet
  const clean = `/${path.replace(/^\/+|\/+$/g, "")}`
  const matched = router.match(method, clean)
  if (matched === undefined) {
    const msg = router.pathExists(clean) ? `no '${verb}' handler for '${clean}'` : `no such resource '${clean}'`
    return { stdout: "", stderr: `${msg}\n`, code: 255 }
  }
  try {
    const r = await router.handle({ method, path: clean, params: options, user: CLI_ROOT, localNode, cli: true })
    let prefix = ""
    let stderr = ""
    const task = taskOf(state, r.data)
    if (task !== undefined) {
      await task.done
      const o = taskOutput(task)
      prefix = o.stdout
      stderr = o.stderr
    }
    let body: string
    if (r.data === null || r.data === undefined) body = ""
    else if (format === "json") body = `${canonicalJson(r.data)}\n`
    else if (format === "json-pretty") body = `${prettyJson(r.data)}\n`
    else if (format === "text") body = textOutput(r.data, matched.route.returns)
    else
      return {
        stdout: "",
        stderr: `400 Parameter verification failed.\noutput-format: value '${format}' does not have a value in the enumeration 'text, json, json-pretty, yaml'\n`,
        code: 255
      }
    return { stdout: prefix + body, stderr, code: 0 }
  } catch (e) {
    return { stdout: "", stderr: cliError(e, `USAGE: pvesh ${verb} ${clean} [OPTIONS]`), code: 255 }
  }
}
