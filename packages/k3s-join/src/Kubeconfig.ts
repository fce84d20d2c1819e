/**
 * A server's admin kubeconfig (`/etc/rancher/k3s/k3s.yaml`) made usable elsewhere: the server URL pointed at a
 * reachable address, cluster/user/context renamed, merged into an existing kubeconfig keeping every other entry.
 * The content carries the admin client key: it stays `Redacted` from end to end.
 *
 * @since 0.2.0
 */
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { parse, stringify } from "yaml"

/**
 * What a kubeconfig says, without its credentials.
 *
 * @since 0.2.0
 * @category models
 */
export interface KubeconfigSummary {
  readonly name: string
  readonly server: string
  readonly currentContext: string | undefined
  readonly contexts: ReadonlyArray<string>
}

type Named = { name?: unknown; [k: string]: unknown }
type Doc = {
  apiVersion?: unknown
  kind?: unknown
  clusters?: Array<Named>
  contexts?: Array<Named>
  users?: Array<Named>
  "current-context"?: unknown
  preferences?: unknown
  [k: string]: unknown
}

const load = (text: string, what: string): Result.Result<Doc, string> => {
  let doc: unknown
  try {
    doc = parse(text)
  } catch (e) {
    // the parser's message quotes no content, only positions
    return Result.fail(`${what} is not YAML: ${(e as Error).message.split("\n")[0]}`)
  }
  if (doc === null || doc === undefined) return Result.succeed({})
  if (typeof doc !== "object" || Array.isArray(doc)) return Result.fail(`${what} is not a kubeconfig (not a mapping)`)
  const d = doc as Doc
  for (const key of ["clusters", "contexts", "users"] as const)
    if (d[key] !== undefined && d[key] !== null && !Array.isArray(d[key]))
      return Result.fail(`${what}: ${key} is not a list`)
  return Result.succeed(d)
}

const list = (d: Doc, key: "clusters" | "contexts" | "users"): Array<Named> =>
  Array.isArray(d[key]) ? (d[key] as Array<Named>) : []

/**
 * Rewrites a k3s admin kubeconfig: keeps the current context's cluster (its CA) and user, sets the cluster's server
 * to `server` (e.g. `https://10.0.10.11:6443` or a VIP in the servers' `tls-san`), and names cluster, user and
 * context `name`. Fails with a message naming what is wrong (never quoting the content).
 *
 * @since 0.2.0
 * @category kubeconfig
 */
export const rewriteKubeconfig = (
  text: Redacted.Redacted<string>,
  options: { readonly server: string; readonly name: string }
): Result.Result<Redacted.Redacted<string>, string> => {
  const loaded = load(Redacted.value(text), "the server's kubeconfig")
  if (Result.isFailure(loaded)) return Result.fail(loaded.failure)
  const d = loaded.success
  const ctxName = typeof d["current-context"] === "string" ? d["current-context"] : undefined
  const ctx = list(d, "contexts").find((c) => c.name === ctxName) ?? list(d, "contexts")[0]
  const ref = (ctx?.context ?? {}) as { cluster?: unknown; user?: unknown }
  const cluster = list(d, "clusters").find((c) => c.name === ref.cluster)
  const user = list(d, "users").find((u) => u.name === ref.user)
  if (cluster === undefined || user === undefined || typeof cluster.cluster !== "object")
    return Result.fail("the server's kubeconfig has no context with a cluster and a user")
  const out = {
    apiVersion: "v1",
    clusters: [{ cluster: { ...(cluster.cluster as object), server: options.server }, name: options.name }],
    contexts: [{ context: { cluster: options.name, user: options.name }, name: options.name }],
    "current-context": options.name,
    kind: "Config",
    preferences: {},
    users: [{ name: options.name, user: user.user }]
  }
  return Result.succeed(Redacted.make(stringify(out)))
}

/**
 * Merges `incoming` (one cluster, user and context, as `rewriteKubeconfig` makes it) into `existing`: entries with
 * the incoming names are replaced where they are (their place in the lists kept), new ones are added at the end, every
 * other entry is kept. The current context becomes the incoming one when
 * `useContext` is set or when `existing` had none.
 *
 * @since 0.2.0
 * @category kubeconfig
 */
export const mergeKubeconfig = (
  existing: Redacted.Redacted<string> | string | undefined,
  incoming: Redacted.Redacted<string>,
  options: { readonly useContext?: boolean | undefined } = {}
): Result.Result<Redacted.Redacted<string>, string> => {
  const base = load(
    existing === undefined ? "" : typeof existing === "string" ? existing : Redacted.value(existing),
    "the existing kubeconfig"
  )
  if (Result.isFailure(base)) return Result.fail(base.failure)
  const add = load(Redacted.value(incoming), "the new kubeconfig")
  if (Result.isFailure(add)) return Result.fail(add.failure)
  const d = base.success
  const n = add.success
  const merged: Doc = { apiVersion: "v1", kind: "Config", preferences: {}, ...d }
  for (const key of ["clusters", "contexts", "users"] as const) {
    // an entry of the same name is replaced where it is (a context merged again keeps its place); a new one is added
    const incoming = new Map(list(n, key).map((e) => [e.name, e]))
    const kept = list(d, key).map((e) => {
      const fresh = incoming.get(e.name)
      incoming.delete(e.name)
      return fresh ?? e
    })
    merged[key] = [...kept, ...incoming.values()]
  }
  const current =
    typeof d["current-context"] === "string" && d["current-context"] !== "" ? d["current-context"] : undefined
  merged["current-context"] = options.useContext === true || current === undefined ? n["current-context"] : current
  return Result.succeed(Redacted.make(stringify(merged)))
}

/**
 * Names, server and current context of a kubeconfig (no credentials), e.g. to print what was written.
 *
 * @since 0.2.0
 * @category kubeconfig
 */
export const summarizeKubeconfig = (
  text: Redacted.Redacted<string>,
  name: string
): Result.Result<KubeconfigSummary, string> => {
  const loaded = load(Redacted.value(text), "the kubeconfig")
  if (Result.isFailure(loaded)) return Result.fail(loaded.failure)
  const d = loaded.success
  const cluster = list(d, "clusters").find((c) => c.name === name)
  const server = (cluster?.cluster as { server?: unknown } | undefined)?.server
  return Result.succeed({
    name,
    server: typeof server === "string" ? server : "",
    currentContext: typeof d["current-context"] === "string" ? d["current-context"] : undefined,
    contexts: list(d, "contexts").map((c) => String(c.name))
  })
}
