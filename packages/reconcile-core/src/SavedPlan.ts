import { createHash } from "node:crypto"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { type Action, describeAction, isDestructive } from "./Action.js"
import type { Desired } from "./Desired.js"
import type { Observed } from "./Observed.js"
import { imageVolid, type Plan } from "./Plan.js"

/**
 * A plan saved to a file (`homelab plan --out FILE`) together with the facts it relied on, so that `homelab apply FILE`
 * applies exactly that plan or refuses, naming what moved. The file holds no secret: actions are kept as their
 * description and a fingerprint (a SHA-256 of the action with every secret replaced by `<redacted>` and its reason,
 * which may carry ages, left out); secrets come from the environment when the plan is applied.
 *
 * What the plan relied on (`SavedPlanFacts`): the SHA-256 of homelab.yaml's text, the options (`--only`, `--prune`),
 * every VM `/cluster/resources` listed (VMID, node, name, type, status, lock, tags, and the config digest of each VM
 * whose configuration was read), each planned node's reachability and whether it holds the image, and the k3s Nodes
 * (role, Ready, version). Applying re-observes, compares those facts, plans again from the new observation and
 * compares the actions' fingerprints: any difference refuses the plan and nothing is changed.
 */

/** The `format` field of a saved plan. */
export const SavedPlanFormat = "homelab-plan"
/** The version of the saved-plan format this library writes and reads. */
export const SavedPlanVersion = 1

const VmFact = Schema.Struct({
  vmid: Schema.Number,
  node: Schema.String,
  name: Schema.NullOr(Schema.String),
  type: Schema.String,
  status: Schema.String,
  lock: Schema.NullOr(Schema.String),
  tags: Schema.Array(Schema.String),
  /** The config digest PVE reported, for the VMs whose configuration the plan read. */
  digest: Schema.NullOr(Schema.String)
})
export type VmFact = typeof VmFact.Type

const NodeFact = Schema.Struct({
  node: Schema.String,
  /** Null when observed; otherwise the code of the problem that kept the node out of the plan. */
  problem: Schema.NullOr(Schema.String),
  online: Schema.Boolean,
  /** The image volume homelab.yaml names for the node, and whether it was there; null for a node not in the file. */
  image: Schema.NullOr(Schema.Struct({ volid: Schema.String, present: Schema.Boolean }))
})
export type NodeFact = typeof NodeFact.Type

const K3sNodeFact = Schema.Struct({
  name: Schema.String,
  role: Schema.String,
  ready: Schema.String,
  version: Schema.NullOr(Schema.String)
})

const K3sFact = Schema.Struct({
  /** `nodes`: the cluster was read; `absent`: no cluster yet; `unavailable`: it could not be read. */
  state: Schema.Literals(["nodes", "absent", "unavailable"]),
  nodes: Schema.Array(K3sNodeFact)
})
export type K3sFact = typeof K3sFact.Type

const SavedAction = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  node: Schema.String,
  after: Schema.Array(Schema.String),
  description: Schema.String,
  destructive: Schema.Boolean,
  reason: Schema.String,
  fingerprint: Schema.String
})
export type SavedAction = typeof SavedAction.Type

/** The facts a plan relied on. */
const SavedPlanFacts = Schema.Struct({
  vms: Schema.Array(VmFact),
  nodes: Schema.Array(NodeFact),
  k3s: Schema.NullOr(K3sFact)
})
export type SavedPlanFacts = typeof SavedPlanFacts.Type

/** A saved plan, version 1: the document `homelab plan --out FILE` writes (JSON). */
export const SavedPlan = Schema.Struct({
  format: Schema.Literal(SavedPlanFormat),
  version: Schema.Literal(SavedPlanVersion),
  createdAt: Schema.String,
  /** What wrote it (`homelab 0.4.0`). */
  generator: Schema.String,
  config: Schema.Struct({ sha256: Schema.String }),
  options: Schema.Struct({ only: Schema.NullOr(Schema.Array(Schema.String)), prune: Schema.Boolean }),
  facts: SavedPlanFacts,
  actions: Schema.Array(SavedAction),
  /** The plan's findings as planned (for reading; not compared). */
  findings: Schema.Array(Schema.Unknown)
})
export type SavedPlan = typeof SavedPlan.Type

/** Why a saved plan is not applied. */
export class SavedPlanUnreadable extends Schema.TaggedError<SavedPlanUnreadable>()("SavedPlanUnreadable", {
  detail: Schema.String
}) {}

/** The plan was made from another homelab.yaml (its SHA-256 differs), or with other options. */
export class SavedPlanOtherConfig extends Schema.TaggedError<SavedPlanOtherConfig>()("SavedPlanOtherConfig", {
  detail: Schema.String
}) {}

/** The world moved since the plan was made: what changed, one entry per fact or action. */
export class SavedPlanStale extends Schema.TaggedError<SavedPlanStale>()("SavedPlanStale", {
  changes: Schema.Array(Schema.String)
}) {}

/** A saved plan that is not applied, and why; nothing was changed. */
export class SavedPlanError extends Schema.TaggedError<SavedPlanError>()("SavedPlanError", {
  reason: Schema.Union([SavedPlanUnreadable, SavedPlanOtherConfig, SavedPlanStale]),
  /** The file, for messages. */
  source: Schema.String
}) {
  override get message(): string {
    const r = this.reason
    if (r._tag === "SavedPlanUnreadable") return `${this.source}: not a saved plan homelab can apply: ${r.detail}`
    if (r._tag === "SavedPlanOtherConfig") return `${this.source}: ${r.detail}`
    return `${this.source}: the lab changed since the plan was made, so it is not applied (nothing was changed):\n${r.changes.map((c) => `  - ${c}`).join("\n")}`
  }
}

/** The SHA-256 (hex) of homelab.yaml's text, as a saved plan records it. */
export const configSha256 = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")

/** JSON with sorted keys, `undefined` left out and every secret replaced by `<redacted>`. */
const canonical = (value: unknown): unknown => {
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return value.map(canonical)
  if (value instanceof Set) return [...value].map(canonical)
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [canonical(k), canonical(v)])
  const json = (value as { toJSON?: () => unknown }).toJSON
  if (typeof json === "function" && Object.getPrototypeOf(value) !== Object.prototype)
    return canonical(json.call(value))
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .flatMap((k) => {
        const v = (value as Record<string, unknown>)[k]
        return v === undefined ? [] : [[k, canonical(v)]]
      })
  )
}

/** What identifies an action across plans: everything but its reason (which may carry ages), secrets redacted. */
export const actionFingerprint = (action: Action): string => {
  const { reason: _reason, ...rest } = action
  return createHash("sha256")
    .update(JSON.stringify(canonical(rest)), "utf8")
    .digest("hex")
}

/** The facts a plan relied on, from the observation it was made from. */
export const planFacts = (desired: Desired, observed: Observed, plan: Plan): SavedPlanFacts => ({
  vms: [...observed.vms]
    .sort((a, b) => a.vmid - b.vmid)
    .map((vm) => ({
      vmid: vm.vmid,
      node: vm.node,
      name: vm.name ?? null,
      type: vm.type,
      status: vm.status,
      lock: vm.lock ?? null,
      tags: [...vm.tags].sort(),
      digest: observed.configs?.get(vm.vmid)?.digest ?? null
    })),
  nodes: [...plan.nodes].sort().map((name) => {
    const node = observed.nodes.get(name)
    const want = desired.nodes.find((n) => n.name === name)
    const volid = want === undefined ? undefined : imageVolid(want)
    return {
      node: name,
      problem: node === undefined ? "not-observed" : (node.problem?.code ?? null),
      online: node?.online ?? false,
      image: volid === undefined ? null : { volid, present: node?.imageVolids.has(volid) ?? false }
    }
  }),
  k3s:
    observed.k3s === undefined
      ? null
      : observed.k3s._tag === "Nodes"
        ? {
            state: "nodes" as const,
            nodes: [...observed.k3s.nodes]
              .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
              .map((n) => ({ name: n.name, role: n.role, ready: n.ready, version: n.kubeletVersion ?? null }))
          }
        : { state: observed.k3s._tag === "Absent" ? ("absent" as const) : ("unavailable" as const), nodes: [] }
})

/** The saved form of a plan: what `homelab plan --out FILE` writes (as JSON). */
export const savePlan = (input: {
  readonly desired: Desired
  readonly observed: Observed
  readonly plan: Plan
  readonly configSha256: string
  readonly options: { readonly only?: ReadonlyArray<string> | undefined; readonly prune?: boolean | undefined }
  readonly createdAt: Date
  readonly generator: string
}): SavedPlan => ({
  format: SavedPlanFormat,
  version: SavedPlanVersion,
  createdAt: input.createdAt.toISOString(),
  generator: input.generator,
  config: { sha256: input.configSha256 },
  options: {
    only: input.options.only === undefined ? null : [...input.options.only],
    prune: input.options.prune ?? false
  },
  facts: planFacts(input.desired, input.observed, input.plan),
  actions: input.plan.actions.map((a) => ({
    id: a.id,
    type: a._tag,
    node: a.node,
    after: [...a.after],
    description: describeAction(a),
    destructive: isDestructive(a),
    reason: a.reason,
    fingerprint: actionFingerprint(a)
  })),
  findings: canonical(input.plan.findings) as ReadonlyArray<unknown>
})

const decode = Schema.decodeUnknownResult(SavedPlan)

/**
 * Reads a saved plan from its JSON text: the format and version are checked first (a plan written by a newer homelab
 * is named as such), then the whole document.
 */
export const readSavedPlan = (text: string, source: string): Result.Result<SavedPlan, SavedPlanError> => {
  const fail = (detail: string) =>
    Result.fail(new SavedPlanError({ reason: new SavedPlanUnreadable({ detail }), source }))
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    return fail(`not JSON (${(e as Error).message})`)
  }
  const head = (typeof json === "object" && json !== null ? json : {}) as { format?: unknown; version?: unknown }
  if (head.format !== SavedPlanFormat)
    return fail(`its format is ${JSON.stringify(head.format)}, not "${SavedPlanFormat}"`)
  if (head.version !== SavedPlanVersion) {
    return fail(
      typeof head.version === "number" && head.version > SavedPlanVersion
        ? `it is format version ${head.version}, written by a newer homelab; this one reads version ${SavedPlanVersion}`
        : `its format version is ${JSON.stringify(head.version)}; this homelab reads version ${SavedPlanVersion}`
    )
  }
  const decoded = decode(json)
  return Result.isSuccess(decoded)
    ? Result.succeed(decoded.success)
    : fail(`it does not match format version ${SavedPlanVersion}: ${decoded.failure.message}`)
}

/** Refuses a saved plan made from another homelab.yaml (by the SHA-256 of its text). */
export const checkSavedConfig = (
  saved: SavedPlan,
  sha256: string,
  source: string,
  configPath: string
): Result.Result<void, SavedPlanError> =>
  saved.config.sha256 === sha256
    ? Result.void
    : Result.fail(
        new SavedPlanError({
          reason: new SavedPlanOtherConfig({
            detail: `the plan was made from another homelab.yaml (SHA-256 ${short(saved.config.sha256)}; ${configPath} is ${short(sha256)} now): make the plan again from this one`
          }),
          source
        })
      )

const short = (hash: string) => hash.slice(0, 12)

const vmWords = (vm: VmFact) => `VM ${vm.vmid}${vm.name === null ? "" : ` ${vm.name}`} on ${vm.node}`

const diffFields = <A extends Record<string, unknown>>(
  before: A,
  after: A,
  fields: ReadonlyArray<keyof A & string>,
  show: (field: string, value: unknown) => string
): Array<string> =>
  fields.flatMap((f) =>
    JSON.stringify(before[f]) === JSON.stringify(after[f]) ? [] : [`${f} ${show(f, before[f])} → ${show(f, after[f])}`]
  )

const showVm = (field: string, value: unknown) =>
  value === null
    ? "none"
    : field === "digest"
      ? short(String(value))
      : Array.isArray(value)
        ? value.join(";") || "none"
        : String(value)

/** What changed between the facts a plan relied on and the facts now, one line per change. */
export const factChanges = (before: SavedPlanFacts, now: SavedPlanFacts): Array<string> => {
  const changes: Array<string> = []
  const vmsNow = new Map(now.vms.map((vm) => [vm.vmid, vm]))
  const vmsBefore = new Map(before.vms.map((vm) => [vm.vmid, vm]))
  for (const vm of before.vms) {
    const current = vmsNow.get(vm.vmid)
    if (current === undefined) {
      changes.push(`${vmWords(vm)} disappeared`)
      continue
    }
    const fields = diffFields(vm, current, ["node", "name", "type", "status", "lock", "tags", "digest"], showVm)
    if (fields.length > 0) changes.push(`${vmWords(vm)} changed: ${fields.join(", ")}`)
  }
  for (const vm of now.vms) if (!vmsBefore.has(vm.vmid)) changes.push(`${vmWords(vm)} appeared`)

  const nodesNow = new Map(now.nodes.map((n) => [n.node, n]))
  for (const n of before.nodes) {
    const current = nodesNow.get(n.node)
    if (current === undefined) continue
    if (n.problem !== current.problem || n.online !== current.online) {
      changes.push(
        `node ${n.node}: ${n.problem === null ? "observed" : `not observed (${n.problem})`} → ${current.problem === null ? "observed" : `not observed (${current.problem})`}`
      )
    }
    if (n.image !== null && current.image !== null && n.image.present !== current.image.present) {
      changes.push(
        `node ${n.node}: the image ${n.image.volid} ${n.image.present ? "was there and is gone" : "was missing and is there now"}`
      )
    }
  }

  if (JSON.stringify(before.k3s) !== JSON.stringify(now.k3s)) {
    if (before.k3s === null || now.k3s === null || before.k3s.state !== now.k3s.state) {
      changes.push(`k3s: the cluster was ${before.k3s?.state ?? "not read"}, now ${now.k3s?.state ?? "not read"}`)
    } else {
      const k3sNow = new Map(now.k3s.nodes.map((n) => [n.name, n]))
      const k3sBefore = new Map(before.k3s.nodes.map((n) => [n.name, n]))
      for (const n of before.k3s.nodes) {
        const current = k3sNow.get(n.name)
        if (current === undefined) changes.push(`k3s Node ${n.name} disappeared`)
        else {
          const fields = diffFields(n, current, ["role", "ready", "version"], (_f, v) => String(v ?? "none"))
          if (fields.length > 0) changes.push(`k3s Node ${n.name} changed: ${fields.join(", ")}`)
        }
      }
      for (const n of now.k3s.nodes) if (!k3sBefore.has(n.name)) changes.push(`k3s Node ${n.name} appeared`)
    }
  }
  return changes
}

/** What differs between the saved actions and the plan made now (by id and fingerprint), one line per action. */
export const actionChanges = (saved: ReadonlyArray<SavedAction>, now: ReadonlyArray<Action>): Array<string> => {
  const nowById = new Map(now.map((a) => [a.id, a]))
  const savedIds = new Set(saved.map((a) => a.id))
  const changes: Array<string> = []
  for (const a of saved) {
    const current = nowById.get(a.id)
    if (current === undefined) changes.push(`the plan no longer holds: ${a.description}`)
    else if (actionFingerprint(current) !== a.fingerprint) {
      const description = describeAction(current)
      changes.push(
        description === a.description
          ? `the plan now does otherwise: ${a.description} (${current.reason})`
          : `the plan now does otherwise: ${a.description} → ${description}`
      )
    }
  }
  for (const a of now)
    if (!savedIds.has(a.id)) changes.push(`the plan now also holds: ${describeAction(a)} (${a.reason})`)
  return changes
}

/**
 * Whether the plan made now (from a new observation, with the saved options) is the saved one: the facts it relied
 * on first, then the actions. Empty: apply the plan made now, which is the saved one action for action.
 */
export const savedPlanChanges = (
  saved: SavedPlan,
  now: { readonly desired: Desired; readonly observed: Observed; readonly plan: Plan }
): Array<string> => [
  ...factChanges(saved.facts, planFacts(now.desired, now.observed, now.plan)),
  ...actionChanges(saved.actions, now.plan.actions)
]
