import { K3sJoin } from "@homelab/k3s-join"
import { ProxmoxApi } from "@homelab/proxmox-client"
import { Clock, Effect } from "effect"
import type { Finding, JoinAction } from "./Action.js"
import { describeAction } from "./Action.js"
import type { ApplyEvent, ApplyOutcome } from "./Apply.js"
import type { Desired, DesiredK3s } from "./Desired.js"
import { type K3sCandidate, type K3sPlan, planK3s, RejoinTag } from "./PlanK3s.js"
import { resolveNames } from "./resolveNames.js"

const serverTarget = (k3s: DesiredK3s) => ({
  host: k3s.server.host,
  port: k3s.server.port,
  user: k3s.server.user,
  apiPort: k3s.server.apiPort
})

/**
 * Observe and plan phase 3: one `/cluster/resources` request, the guest agent's IP of each running VM of ours (in
 * parallel), and the cluster's Nodes (one read-only SSH command on the k3s server). `recreated` names VMs rebuilt in
 * this run (they also carry `homelab-rejoin` until they rejoined).
 */
export const planK3sPhase = Effect.fn("planK3sPhase")(function* (
  desired: Desired,
  k3s: DesiredK3s,
  options: { readonly only?: ReadonlyArray<string> | undefined } = {}
) {
  const api = yield* ProxmoxApi
  const join = yield* K3sJoin
  const vms = yield* resolveNames((yield* api.clusterResources).vms)
  const wanted = desired.nodes
    .filter((n) => options.only === undefined || options.only.includes(n.name))
    .flatMap((n) => n.vms)
  const findings: Array<Finding> = []
  const candidates: Array<K3sCandidate> = []
  yield* Effect.forEach(
    wanted,
    (vm) =>
      Effect.gen(function* () {
        const match = vms.find((r) => r.name === vm.name && r.type === "qemu")
        if (match === undefined || !match.tags.includes(desired.ownershipTag)) return
        const status = yield* api.vmStatus(match.node, match.vmid)
        const ip =
          status.status === "running" && (status.qmpstatus ?? "running") === "running"
            ? yield* api.vmIpv4(match.node, match.vmid).pipe(Effect.orElseSucceed(() => undefined))
            : undefined
        candidates.push({
          name: vm.name,
          node: match.node,
          vmid: match.vmid,
          role: vm.role,
          ip,
          rebuilt: match.tags.includes(RejoinTag)
        })
      }),
    { concurrency: 8, discard: true }
  )
  const nodes = yield* join.clusterNodes(serverTarget(k3s))
  const plan = planK3s(
    candidates.sort((a, b) => a.name.localeCompare(b.name)),
    nodes,
    { serverHost: k3s.server.host }
  )
  return { actions: plan.actions, findings: [...findings, ...plan.findings] } satisfies K3sPlan
})

/**
 * Apply phase 3: servers join one at a time (etcd admits one learner), then agents in parallel; a rebuilt VM's stale
 * Node and password secret go first, and its `homelab-rejoin` mark is cleared once it is a Ready member. A failed join
 * never stops the others.
 */
export const applyK3s = Effect.fn("applyK3s")(function* (
  actions: ReadonlyArray<JoinAction>,
  k3s: DesiredK3s,
  options: {
    readonly onEvent?: ((event: ApplyEvent) => Effect.Effect<void>) | undefined
    readonly indexOffset?: number | undefined
    readonly agentConcurrency?: number | undefined
  } = {}
) {
  const api = yield* ProxmoxApi
  const join = yield* K3sJoin
  const emit = options.onEvent ?? (() => Effect.void)
  const offset = options.indexOffset ?? 0
  const outcomes: Array<ApplyOutcome> = []

  const one = (action: JoinAction, index: number) =>
    Effect.gen(function* () {
      const description = describeAction(action)
      const started = yield* Clock.currentTimeMillis
      yield* emit({ _tag: "ActionStarted", index, action, description })
      const result = yield* Effect.result(
        join.ensureMember({
          server: serverTarget(k3s),
          host: { host: action.ip, port: k3s.vmSshPort, user: k3s.vmUser, nodeName: action.vm, ip: action.ip },
          role: action.role,
          rebuilt: action.rejoin,
          version: k3s.version,
          flags: k3s.installFlags,
          token: k3s.token,
          ...(k3s.airgap !== undefined ? { airgap: { dir: k3s.airgap } } : {})
        })
      )
      const ms = (yield* Clock.currentTimeMillis) - started
      if (result._tag === "Failure") {
        const error = result.failure.message
        outcomes.push({ index, action, status: "failed", detail: error })
        return yield* emit({ _tag: "ActionFailed", index, node: action.node, description, error, ms })
      }
      // Clear the rebuild mark: from now on the VM is a member like any other.
      const config = yield* api.vmConfig(action.node, action.vmid).pipe(Effect.orElseSucceed(() => undefined))
      if (config?.tags.includes(RejoinTag)) {
        yield* api
          .updateVmConfig(action.node, action.vmid, { tags: config.tags.filter((t) => t !== RejoinTag).join(";") })
          .pipe(Effect.ignore)
      }
      const member = result.success
      const detail =
        member._tag === "AlreadyMember"
          ? `${action.vm} is a Ready ${action.role}`
          : `${action.vm} joined as ${action.role === "server" ? "a server" : "an agent"} (${member.version ?? "?"})${member.cleanedUp ? ", stale Node and password secret removed first" : ""}`
      outcomes.push({ index, action, status: "done", detail, ip: action.ip })
      yield* emit({ _tag: "ActionDone", index, node: action.node, description, detail, ms })
    })

  const indexed = actions.map((action, i) => [action, offset + i] as const)
  yield* Effect.forEach(
    indexed.filter(([a]) => a.role === "server"),
    ([a, i]) => one(a, i),
    { concurrency: 1, discard: true }
  )
  yield* Effect.forEach(
    indexed.filter(([a]) => a.role === "agent"),
    ([a, i]) => one(a, i),
    { concurrency: options.agentConcurrency ?? 4, discard: true }
  )
  return outcomes.sort((a, b) => a.index - b.index)
})
