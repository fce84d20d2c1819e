import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import {
  ProxmoxApi,
  type ProxmoxApiShape,
  ProxmoxClientConfig,
  type ProxmoxClientConfigShape,
  type ProxmoxClientEvent,
  type ProxmoxError
} from "../src/index.js"
import { fakePve } from "./helpers.js"
import { apiLayer, errorOf, scenario, simConfig, simSsh, withSim } from "./simulator.js"

const run = <A>(layer: Layer.Layer<ProxmoxApi>, f: (pve: ProxmoxApiShape) => Effect.Effect<A, ProxmoxError>) =>
  Effect.gen(function* () {
    const pve = yield* ProxmoxApi
    return { value: yield* Effect.exit(f(pve)), transport: (node: string) => pve.transportOf(node) }
  }).pipe(Effect.provide(layer))

const OTHER_SECRET = "11111111-2222-4333-8444-555555555555"

describe("fallback to SSH against the simulator", () => {
  it.live(
    "untrusted certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE): one event with the fingerprint seen, then SSH",
    () =>
      Effect.gen(function* () {
        const sim = yield* withSim({ faults: [{ kind: "untrustedCert", node: "pve2" }] })
        const events: Array<ProxmoxClientEvent> = []
        const layer = yield* apiLayer(sim, "fallback", { onEvent: (e) => events.push(e) })
        const out = yield* run(layer, (pve) =>
          Effect.all([pve.nodeStatus("pve2"), pve.nodeStatus("pve2"), pve.nodeStatus("pve")])
        )
        assert.isTrue(Exit.isSuccess(out.value))
        assert.strictEqual(out.transport("pve2"), "ssh")
        assert.strictEqual(out.transport("pve"), "rest")
        assert.strictEqual(events.length, 1)
        const event = events[0] as Extract<ProxmoxClientEvent, { _tag: "FallbackToSsh" }>
        assert.strictEqual(event.node, "pve2")
        assert.strictEqual(event.reason, "TlsUntrusted")
        assert.include(event.detail, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
        assert.match(event.fingerprint ?? "", /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
        assert.notStrictEqual(event.fingerprint, sim.info.nodes[1]?.fingerprint, "the untrusted certificate was seen")
        const log = sim.requests()
        assert.strictEqual(log.filter((q) => q.node === "pve2" && q.transport === "ssh").length, 2)
        assert.strictEqual(log.filter((q) => q.node === "pve2" && q.transport === "api").length, 0)
        assert.strictEqual(log.filter((q) => q.node === "pve" && q.transport === "api").length, 1)
      })
  )

  it.live("fingerprint pin mismatch and system CAs only both fall back; fallback off surfaces TlsUntrusted", () =>
    Effect.gen(function* () {
      const sim = yield* withSim()
      const pinned = yield* apiLayer(sim, "fallback", { tls: { fingerprint: "AB:".repeat(31).concat("AB") } })
      const a = yield* run(pinned, (pve) => pve.version)
      assert.isTrue(Exit.isSuccess(a.value))
      assert.strictEqual(a.transport("pve"), "ssh")
      const systemCas = yield* apiLayer(sim, "fallback", { tls: undefined })
      const b = yield* run(systemCas, (pve) => pve.version)
      assert.isTrue(Exit.isSuccess(b.value))
      assert.strictEqual(b.transport("pve"), "ssh")
      const off = yield* apiLayer(sim, "fallback", { tls: undefined, fallback: false })
      const c = yield* run(off, (pve) => pve.version)
      assert.deepInclude(errorOf(c.value).reason, { _tag: "TlsUntrusted", code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
      assert.strictEqual(c.transport("pve"), "rest")
    })
  )

  it.live(
    "DEPTH_ZERO_SELF_SIGNED_CERT and SELF_SIGNED_CERT_IN_CHAIN (a node serving such certificates) fall back",
    () =>
      Effect.gen(function* () {
        const sim = yield* withSim()
        for (const mode of ["self", "chain"] as const) {
          const server = yield* fakePve(mode, () => ({ status: 200, body: { data: null } }))
          const events: Array<ProxmoxClientEvent> = []
          const base = simConfig(sim)
          const config: ProxmoxClientConfigShape = {
            ...base,
            nodes: base.nodes.map((n) => (n.name === "pve" ? { ...n, apiUrl: `https://127.0.0.1:${server.port}` } : n)),
            onEvent: (e) => events.push(e)
          }
          const layer = ProxmoxApi.layer.pipe(
            Layer.provide(ProxmoxClientConfig.layer(config)),
            Layer.provide(yield* simSsh(sim))
          )
          const out = yield* run(layer, (pve) => pve.vmStatus("pve", 100))
          assert.isTrue(Exit.isSuccess(out.value))
          assert.include(
            (events[0] as { detail: string }).detail,
            mode === "self" ? "DEPTH_ZERO_SELF_SIGNED_CERT" : "SELF_SIGNED_CERT_IN_CHAIN"
          )
        }
      })
  )

  it.live("DNS failure (unresolvable API host) falls back; without fallback it is Unreachable(dns)", () =>
    Effect.gen(function* () {
      const sim = yield* withSim()
      const base = simConfig(sim)
      const nodes = base.nodes.map((n) =>
        n.name === "pve" ? { ...n, apiUrl: "https://pve-nonexistent.invalid:8006" } : n
      )
      const ssh = yield* simSsh(sim)
      const layerFor = (config: ProxmoxClientConfigShape) =>
        ProxmoxApi.layer.pipe(Layer.provide(ProxmoxClientConfig.layer(config)), Layer.provide(ssh))
      const on = yield* run(layerFor({ ...base, nodes }), (pve) => pve.vmStatus("pve", 100))
      assert.isTrue(Exit.isSuccess(on.value))
      assert.strictEqual(on.transport("pve"), "ssh")
      const off = yield* run(layerFor({ ...base, nodes, fallback: false }), (pve) => pve.vmStatus("pve", 100))
      assert.deepInclude(errorOf(off.value).reason, { _tag: "Unreachable", kind: "dns", transport: "rest" })
    })
  )

  it.live(
    "a write whose answer was lost is not sent again over SSH: the node switches, and the task it started is the result",
    () =>
      Effect.gen(function* () {
        const stop = "/nodes/pve/qemu/100/status/stop"
        const sim = yield* withSim({
          faults: [{ kind: "responseLost", node: "pve", method: "POST", path: stop, times: 1 }]
        })
        const events: Array<ProxmoxClientEvent> = []
        const layer = yield* apiLayer(sim, "fallback", { onEvent: (e) => events.push(e) })
        const out = yield* run(layer, (pve) => pve.stopVm("pve", 100))
        assert.isTrue(Exit.isSuccess(out.value))
        assert.strictEqual(out.transport("pve"), "ssh")
        assert.deepStrictEqual(
          events.map((e) => e._tag),
          ["FallbackToSsh"]
        )
        // PVE performed the stop once, over REST; over SSH the client only read (the task list, the task's status)
        const stops = sim.state().tasks.filter((t) => t.type === "qmstop" && t.id === "100")
        assert.lengthOf(stops, 1)
        if (Exit.isSuccess(out.value)) assert.strictEqual(out.value.value.upid, stops[0]?.upid)
        const log = sim.requests().filter((q) => q.node === "pve")
        assert.deepStrictEqual(
          log.filter((q) => q.transport === "api").map((q) => `${q.method ?? ""} ${q.path ?? ""}`),
          [`POST ${stop}`]
        )
        const ssh = log.filter((q) => q.transport === "ssh").map((q) => q.command ?? "")
        assert.isNotEmpty(ssh)
        for (const command of ssh) assert.match(command, /^pvesh get /)
      })
  )

  it.live("connection refused (API down) and timeout (slow API) fall back", () =>
    Effect.gen(function* () {
      const sim = yield* withSim({
        faults: [
          { kind: "apiDown", node: "pve" },
          { kind: "latency", ms: 1_500, node: "pve2", transport: "api" }
        ]
      })
      // One client per case, so that the refusal is never up against the slow API's short request timeout (on a
      // loaded machine the refusal may take longer than 300 ms to be seen).
      const refusedEvents: Array<ProxmoxClientEvent> = []
      const refusedLayer = yield* apiLayer(sim, "fallback", {
        timeouts: { request: 60_000 },
        onEvent: (e) => refusedEvents.push(e)
      })
      const slowEvents: Array<ProxmoxClientEvent> = []
      const slowLayer = yield* apiLayer(sim, "fallback", {
        timeouts: { request: 300 },
        onEvent: (e) => slowEvents.push(e)
      })
      const refused = yield* run(refusedLayer, (pve) => pve.vmStatus("pve", 100))
      const slow = yield* run(slowLayer, (pve) => pve.nodeStatus("pve2"))
      assert.isTrue(Exit.isSuccess(refused.value))
      assert.isTrue(Exit.isSuccess(slow.value))
      const fallbacks = (events: ReadonlyArray<ProxmoxClientEvent>) =>
        events.flatMap((e) => (e._tag === "FallbackToSsh" ? [[e.node, e.reason, e.detail]] : []))
      const [toSshRefused] = fallbacks(refusedEvents)
      const [toSshSlow] = fallbacks(slowEvents)
      assert.deepStrictEqual([toSshRefused?.[0], toSshRefused?.[1]], ["pve", "Unreachable"])
      assert.deepStrictEqual([toSshSlow?.[0], toSshSlow?.[1]], ["pve2", "Unreachable"])
      assert.include(toSshRefused?.[2] ?? "", "unreachable over rest (refused")
      assert.include(toSshSlow?.[2] ?? "", "unreachable over rest (timeout")
    })
  )

  it.live(
    "a read the node holds unanswered costs one request timeout (it is not sent again over REST), then goes over SSH",
    () =>
      Effect.gen(function* () {
        const path = "/nodes/pve2/status"
        const sim = yield* withSim({ faults: [{ kind: "requestHold", node: "pve2", method: "GET", path }] })
        const held: Array<string> = []
        const unwatch = sim.watch((r) => {
          if (r._tag === "RequestHeld") held.push(`${r.method} ${r.path}`)
        })
        yield* Effect.addFinalizer(() => Effect.sync(unwatch))
        const events: Array<ProxmoxClientEvent> = []
        const layer = yield* apiLayer(sim, "fallback", { timeouts: { request: 300 }, onEvent: (e) => events.push(e) })
        const out = yield* run(layer, (pve) => pve.nodeStatus("pve2"))
        assert.isTrue(Exit.isSuccess(out.value), String(out.value))
        assert.strictEqual(out.transport("pve2"), "ssh")
        assert.deepStrictEqual(held, [`GET ${path}`], "the held read was sent once over REST")
        const [event] = events
        assert.deepInclude(event, { _tag: "FallbackToSsh", node: "pve2", reason: "Unreachable" })
        assert.include((event as { detail: string }).detail, "unreachable over rest (timeout")
        const ssh = sim.requests().filter((q) => q.node === "pve2" && q.transport === "ssh")
        assert.deepStrictEqual(
          ssh.map((q) => q.command),
          [`pvesh get ${path} --output-format json`]
        )
      })
  )

  it.live(
    "a write the node holds unanswered is sent once: it fails with the timeout, naming the node, and is not sent over SSH",
    () =>
      Effect.gen(function* () {
        const path = "/nodes/pve/qemu/100/status/stop"
        const sim = yield* withSim({ faults: [{ kind: "requestHold", node: "pve", method: "POST", path }] })
        const held: Array<string> = []
        const unwatch = sim.watch((r) => {
          if (r._tag === "RequestHeld") held.push(`${r.method} ${r.path}`)
        })
        yield* Effect.addFinalizer(() => Effect.sync(unwatch))
        const layer = yield* apiLayer(sim, "fallback", { timeouts: { request: 300 } })
        const out = yield* run(layer, (pve) => pve.stopVm("pve", 100))
        const error = errorOf(out.value)
        assert.strictEqual(error.node, "pve")
        assert.deepInclude(error.reason, { _tag: "Unreachable", kind: "timeout", transport: "rest" })
        assert.deepStrictEqual(held, [`POST ${path}`], "the held write was sent once over REST")
        assert.strictEqual(out.transport("pve"), "ssh")
        // over SSH the client only read (what became of the stop); the stop itself was not sent again
        const ssh = sim.requests().filter((q) => q.node === "pve" && q.transport === "ssh")
        for (const q of ssh) assert.match(q.command ?? "", /^pvesh get /)
        assert.lengthOf(
          sim.state().tasks.filter((t) => t.type === "qmstop"),
          0
        )
      })
  )

  it.live(
    "the default node dead on both transports: cluster-wide requests move to the next node (once), and that node's errors name both transports",
    () =>
      Effect.gen(function* () {
        const sim = yield* withSim({
          faults: [
            { kind: "apiDown", node: "pve" },
            { kind: "sshAuthRefused", node: "pve" }
          ]
        })
        const events: Array<ProxmoxClientEvent> = []
        const layer = yield* apiLayer(sim, "fallback", { onEvent: (e) => events.push(e) })
        const out = yield* run(layer, (pve) =>
          Effect.all([pve.clusterResources, pve.version, pve.nodeStatus("pve").pipe(Effect.exit)])
        )
        assert.isTrue(Exit.isSuccess(out.value), String(out.value))
        assert.deepStrictEqual(
          events.map((e) => e._tag),
          ["FallbackToSsh", "ClusterEndpointChanged"]
        )
        assert.deepInclude(events[1] as object, { from: "pve", to: "pve2" })
        if (Exit.isSuccess(out.value)) {
          const failure = errorOf(out.value.value[2])
          assert.deepInclude(failure.reason, { _tag: "AuthRejected", transport: "ssh" })
          assert.deepInclude(failure.fallbackFrom ?? {}, { _tag: "Unreachable", kind: "refused", transport: "rest" })
        }
        // /cluster/resources and /version went to pve2's API after the one failed attempt on pve
        const log = sim.requests()
        assert.strictEqual(log.filter((q) => q.node === "pve2" && q.path === "/cluster/resources").length, 1)
        assert.strictEqual(log.filter((q) => q.node === "pve2" && q.path === "/version").length, 1)
      })
  )

  it.live("a task that fails on a node driven over SSH says so (transport ssh); on a node over REST, rest", () =>
    Effect.gen(function* () {
      const sim = yield* withSim({
        vms: [
          { vmid: 103, node: "pve2", name: "db", status: "stopped", config: { cores: 1, memory: "512" } },
          { vmid: 104, node: "pve", name: "app", status: "stopped", config: { cores: 1, memory: "512" } }
        ],
        faults: [
          { kind: "untrustedCert", node: "pve2" },
          { kind: "taskFail", taskType: "qmstart", exitstatus: "start failed: QEMU exited with code 1" }
        ]
      })
      const layer = yield* apiLayer(sim, "fallback")
      const out = yield* run(layer, (pve) =>
        Effect.all([pve.startVm("pve2", 103).pipe(Effect.exit), pve.startVm("pve", 104).pipe(Effect.exit)])
      )
      assert.strictEqual(out.transport("pve2"), "ssh")
      if (Exit.isSuccess(out.value)) {
        const [overSsh, overRest] = out.value.value.map(errorOf)
        assert.deepInclude(overSsh?.reason ?? {}, {
          _tag: "TaskFailed",
          exitstatus: "start failed: QEMU exited with code 1"
        })
        assert.strictEqual(overSsh?.transport, "ssh")
        assert.strictEqual(overSsh?.operation, "startVm")
        assert.deepInclude(overRest?.reason ?? {}, { _tag: "TaskFailed" })
        assert.strictEqual(overRest?.transport, "rest")
      } else assert.fail("both starts are observed as failures")
    })
  )

  it.live("596 from the inter-node proxy: explained, and answered over SSH to that node when configured", () =>
    Effect.gen(function* () {
      const sim = yield* withSim({ faults: [{ kind: "proxy596", node: "pve2" }] })
      const base = simConfig(sim)
      // pve2 has no API URL of its own: its requests go through pve's pveproxy, which answers 596
      const nodes = base.nodes.map((n) => (n.name === "pve2" ? { ...n, apiUrl: undefined } : n))
      const withoutSsh = nodes.map((n) => (n.name === "pve2" ? { name: "pve2" } : n))
      const ssh = yield* simSsh(sim)
      const layerFor = (config: ProxmoxClientConfigShape) =>
        ProxmoxApi.layer.pipe(Layer.provide(ProxmoxClientConfig.layer(config)), Layer.provide(ssh))
      const off = yield* run(layerFor({ ...base, nodes, fallback: false }), (pve) => pve.nodeStatus("pve2"))
      const reason = errorOf(off.value).reason
      assert.strictEqual(reason._tag, "ProxyError")
      if (reason._tag === "ProxyError") {
        assert.strictEqual(reason.status, 596)
        assert.include(reason.explanation, "pvecm updatecerts")
        assert.include(errorOf(off.value).message, "node name")
      }
      const on = yield* run(layerFor({ ...base, nodes }), (pve) => pve.nodeStatus("pve2"))
      assert.isTrue(Exit.isSuccess(on.value))
      assert.strictEqual(on.transport("pve2"), "ssh")
      assert.strictEqual(on.transport("pve"), "rest")
      // a pve2 without SSH of its own is reached through pvesh on the default node (pvesh forwards the call)
      const viaDefault = yield* run(layerFor({ ...base, nodes: withoutSsh }), (pve) => pve.nodeStatus("pve2"))
      assert.isTrue(Exit.isSuccess(viaDefault.value))
    })
  )
})

describe("waitForIpv4 and the agent privilege", () => {
  it.live(
    "a token that may read the VM but not its agent fails at once with PermissionDenied, not after the wait",
    () =>
      Effect.gen(function* () {
        // PVE 8: PVEAuditor has VM.Audit (the config read works), not VM.Monitor (the agent calls need it)
        const sim = yield* withSim({
          users: [{ userid: "auditor@pve", tokens: [{ id: "ro", secret: OTHER_SECRET, privsep: false }] }],
          acls: [{ path: "/", ugid: "auditor@pve", role: "PVEAuditor" }]
        })
        const layer = yield* apiLayer(sim, "rest", {
          auth: { _tag: "Token", tokenId: "auditor@pve!ro", secret: Redacted.make(OTHER_SECRET) }
        })
        const out = yield* run(layer, (pve) => pve.waitForIpv4("pve", 100, { timeout: "20 seconds" }))
        assert.deepInclude(errorOf(out.value).reason, { _tag: "PermissionDenied" })
        const agentCalls = sim.requests().filter((q) => q.path?.includes("/agent/") === true)
        assert.lengthOf(agentCalls, 1, "asked once, not polled until the timeout")
      })
  )

  it.live("a VM whose config has no agent, or disables it, fails at once: no address can ever come", () =>
    Effect.gen(function* () {
      const vm = (vmid: number, agent: string | undefined) => ({
        vmid,
        node: "pve",
        name: `no-agent-${vmid}`,
        status: "running" as const,
        ip: `127.77.3.${vmid - 50}`,
        config: {
          cores: 1,
          memory: "1024",
          net0: `virtio=BC:24:11:2E:7A:${vmid.toString(16).toUpperCase()},bridge=vmbr0`,
          ...(agent === undefined ? {} : { agent })
        }
      })
      const sim = yield* withSim({
        vms: [...(scenario().vms ?? []), vm(110, undefined), vm(111, "0"), vm(112, "enabled=0")]
      })
      const layer = yield* apiLayer(sim, "rest")
      // a timeout far beyond the test's own: a wait that polled would fail the test
      const wait = (vmid: number) => run(layer, (pve) => pve.waitForIpv4("pve", vmid, { timeout: "1 hour" }))
      const missing = errorOf((yield* wait(110)).value)
      assert.deepInclude(missing, { operation: "waitForIpv4", node: "pve" })
      assert.deepInclude(missing.reason, { _tag: "ApiError", status: 500, detail: "No QEMU guest agent configured" })
      for (const vmid of [111, 112]) {
        const disabled = errorOf((yield* wait(vmid)).value).reason
        assert.deepInclude(disabled, {
          _tag: "ApiError",
          detail: "QEMU guest agent is not running (the VM's config disables it: agent 0)"
        })
      }
      const agentCalls = sim.requests().filter((q) => q.path?.includes("/agent/") === true)
      assert.lengthOf(agentCalls, 0, "no agent call: the config says none can answer")
      // a VM with its agent enabled still gets its address
      const web1 = (yield* run(layer, (pve) => pve.waitForIpv4("pve", 100))).value
      assert.isTrue(Exit.isSuccess(web1) && web1.value === "127.77.3.50")
    })
  )
})

describe("no fallback on API answers", () => {
  it.live(
    "401 (wrong secret), 403 (token without ACL), 400 (invalid parameter), 500 (semantic) surface as they are",
    () =>
      Effect.gen(function* () {
        const sim = yield* withSim({
          users: [{ userid: "auditor@pve", tokens: [{ id: "ro", secret: OTHER_SECRET, privsep: true }] }]
        })
        const badSecret = yield* apiLayer(sim, "fallback", {
          auth: { _tag: "Token", tokenId: sim.info.auth.tokenId, secret: Redacted.make(OTHER_SECRET) }
        })
        const noAcl = yield* apiLayer(sim, "fallback", {
          auth: { _tag: "Token", tokenId: "auditor@pve!ro", secret: Redacted.make(OTHER_SECRET) }
        })
        const root = yield* apiLayer(sim, "fallback")
        const e401 = errorOf((yield* run(badSecret, (pve) => pve.vmStatus("pve", 100))).value)
        const e403 = errorOf((yield* run(noAcl, (pve) => pve.vmStatus("pve", 100))).value)
        const e400 = errorOf(
          (yield* run(root, (pve) => pve.createVm({ node: "pve", vmid: 300, name: "bad_name" }))).value
        )
        const e500 = errorOf((yield* run(root, (pve) => pve.destroyVm("pve", 100))).value)
        assert.strictEqual(e401.reason._tag, "AuthRejected")
        assert.deepInclude(e403.reason, { _tag: "PermissionDenied", path: "/vms/100" })
        assert.strictEqual(e400.reason._tag, "InvalidParameter")
        assert.deepInclude(e500.reason, { _tag: "ApiError", status: 500 })
        assert.strictEqual(sim.requests().filter((q) => q.transport === "ssh").length, 0, "never SSH")
        for (const e of [e401, e403, e400, e500]) {
          assert.notInclude(JSON.stringify(e), OTHER_SECRET)
          assert.notInclude(e.message, OTHER_SECRET)
          assert.notInclude(JSON.stringify(e), sim.info.auth.tokenSecret)
        }
      })
  )
})
