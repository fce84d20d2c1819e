// What `kubeconfig` runs, loaded only when it runs.
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import { type FetchedKubeconfig, K3sJoin, mergeKubeconfig, summarizeKubeconfig } from "@homelab/k3s-join"
import type { ProxmoxError } from "@homelab/proxmox-client"
import { type Desired, desiredFromConfig, observe } from "@homelab/reconcile-core"
import type { SshError } from "@homelab/ssh"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { CommandFailed } from "../CommandFailed.js"
import { describeKubeconfigError, toCommandFailed } from "../describeError.js"
import { ExitCode } from "../ExitCode.js"
import { loadConfig, warnConfig } from "../LoadedConfig.js"
import { root } from "../Root.js"
import { noticeLine } from "../render/Progress.js"
import { type Notice, proxmoxLayer } from "../Session.js"

/** Where `--merge` writes: `--out`, else the first file of `$KUBECONFIG`, else `~/.kube/config`. */
export const mergeTarget = (out: string | undefined, env: Record<string, string | undefined>): string => {
  if (out !== undefined) return path.resolve(out)
  const first = (env.KUBECONFIG ?? "").split(path.delimiter).find((p) => p.trim() !== "")
  return first !== undefined ? path.resolve(first) : path.join(env.HOME ?? os.homedir(), ".kube", "config")
}

/** Writes `text` to `file` with mode 600 (a new file beside it, renamed over it: never half-written, never wider). */
const writePrivate = async (file: string, text: string) => {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 })
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.homelab-${process.pid}`)
  try {
    await writeFile(temp, text, { mode: 0o600, flag: "w" })
    await chmod(temp, 0o600)
    await rename(temp, file)
  } finally {
    await rm(temp, { force: true })
  }
}

/** The server to read the kubeconfig from: `k3s.server`, else a Ready server VM of ours (the one that answered first). */
const readyServer = Effect.fn("readyServer")(function* (desired: Desired) {
  const k3s = desired.k3s
  if (k3s === undefined) return undefined
  if (k3s.server !== undefined) return { ...k3s.server }
  const observed = yield* observe(desired, {})
  const facts = observed.k3s
  if (facts?._tag !== "Nodes") return undefined
  const ours = new Set(desired.nodes.flatMap((n) => n.vms.filter((vm) => vm.role === "server").map((vm) => vm.name)))
  const ready = facts.nodes.filter((n) => n.role === "server" && n.ready === "True" && ours.has(n.name))
  const pick = ready.find((n) => n.name === facts.via?.vm) ?? ready[0]
  const ip = pick?.name === facts.via?.vm ? facts.via?.ip : pick?.internalIPs[0]
  if (pick === undefined || ip === undefined) return undefined
  // the user the server VM's guest has now (a changed vm.user reaches it at its next start)
  const vm = observed.vms.find((v) => v.name === pick.name && v.tags.includes(desired.ownershipTag))
  const user = (vm === undefined ? undefined : observed.guestUsers?.get(vm.vmid)) ?? k3s.vmUser
  return { host: ip, port: k3s.vmSshPort, user, apiPort: 6443 }
})

export const kubeconfig = ({
  merge,
  context,
  out
}: {
  readonly merge: boolean
  readonly context: string
  readonly out: Option.Option<string>
}) =>
  Effect.gen(function* () {
    const flags = yield* root
    const loaded = yield* loadConfig(flags.config, process.env)
    yield* warnConfig(loaded)
    if (loaded.config.k3s === undefined) {
      return yield* new CommandFailed({
        userMessage: `${loaded.path} has no k3s section: there is no cluster to give a kubeconfig for`,
        exitCode: ExitCode.Config
      })
    }
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(context)) {
      return yield* new CommandFailed({
        userMessage: `--context ${JSON.stringify(context)}: a name of letters, digits, '.', '_', '@' and '-'`,
        exitCode: ExitCode.Usage
      })
    }
    const notices: Array<string> = []
    const layer = yield* proxmoxLayer(loaded, (n: Notice) => {
      if (n._tag === "Proxmox") notices.push(noticeLine(n))
    })
    const desired = desiredFromConfig(loaded.config, { sshKeys: loaded.sshKeys })
    const program = Effect.gen(function* () {
      const server = yield* readyServer(desired)
      if (server === undefined) {
        return yield* new CommandFailed({
          userMessage: "no Ready k3s server to read the kubeconfig from",
          hint: "run `homelab apply` first (`homelab status` shows the k3s members)",
          exitCode: ExitCode.NotConverged
        })
      }
      const k3s = yield* K3sJoin
      return yield* k3s
        .fetchKubeconfig({ server, endpoint: desired.k3s?.apiEndpoint, name: context })
        .pipe(
          Effect.mapError((e) =>
            describeKubeconfigError(e, server, desired.k3s?.server === undefined ? "vm" : "k3s.server")
          )
        )
    }).pipe(Effect.provide(layer))
    const fetched: FetchedKubeconfig = yield* toCommandFailed(
      program as Effect.Effect<FetchedKubeconfig, ProxmoxError | SshError | CommandFailed>,
      desired
    )
    for (const line of notices) yield* Console.error(line)

    const target = merge ? mergeTarget(Option.getOrUndefined(out), process.env) : Option.getOrUndefined(out)
    if (target === undefined) {
      // Asked for on stdout: the one place the admin key goes out, because the user asked for exactly that.
      if (flags.json)
        return yield* Console.log(
          JSON.stringify({ name: fetched.name, server: fetched.server, kubeconfig: Redacted.value(fetched.kubeconfig) })
        )
      return yield* Effect.sync(() => process.stdout.write(Redacted.value(fetched.kubeconfig)))
    }
    let text = fetched.kubeconfig
    if (merge) {
      const existing = yield* Effect.promise(() =>
        readFile(target, "utf8").then(
          (t) => t,
          (e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? undefined : e)
        )
      )
      if (existing instanceof Error) {
        return yield* new CommandFailed({
          userMessage: `cannot read ${target}: ${existing.message}`,
          exitCode: ExitCode.Error
        })
      }
      const merged = mergeKubeconfig(existing === undefined ? undefined : Redacted.make(existing), fetched.kubeconfig)
      if (Result.isFailure(merged)) {
        return yield* new CommandFailed({
          userMessage: `not merging into ${target}: ${merged.failure}`,
          hint: "fix or move that file, or write a separate one with --out FILE",
          exitCode: ExitCode.Error
        })
      }
      text = merged.success
    }
    yield* Effect.tryPromise({
      try: () => writePrivate(target, Redacted.value(text)),
      catch: (e) =>
        new CommandFailed({ userMessage: `cannot write ${target}: ${(e as Error).message}`, exitCode: ExitCode.Error })
    })
    const summary = summarizeKubeconfig(text, fetched.name)
    const contexts = Result.isSuccess(summary) ? summary.success.contexts : [fetched.name]
    const current = Result.isSuccess(summary) ? summary.success.currentContext : undefined
    if (flags.json) {
      return yield* Console.log(
        JSON.stringify({
          name: fetched.name,
          server: fetched.server,
          file: target,
          merged: merge,
          contexts,
          currentContext: current ?? null
        })
      )
    }
    yield* Console.log(
      `${merge ? "Merged" : "Wrote"} context ${fetched.name} (server ${fetched.server}) ${merge ? "into" : "to"} ${target} (mode 600)${merge ? `; contexts: ${contexts.join(", ")}` : ""}.`
    )
    if (current !== fetched.name) yield* Console.log(`Use it: kubectl --context ${fetched.name} get nodes`)
  })
