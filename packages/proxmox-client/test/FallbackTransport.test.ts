import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import { TestClock } from "effect/testing"
import {
  ApiError,
  AuthRejected,
  InvalidParameter,
  Locked,
  makeFallbackTransport,
  makeProxmoxApi,
  PermissionDenied,
  type ProxmoxClientConfigShape,
  type ProxmoxClientEvent,
  ProxmoxError,
  type ProxmoxErrorReason,
  ProxyError,
  type PveRequest,
  TlsUntrusted,
  Unreachable
} from "../src/index.js"

const config = (over: Partial<ProxmoxClientConfigShape> = {}): ProxmoxClientConfigShape => ({
  nodes: [
    { name: "pve1", apiUrl: "https://pve1:8006", ssh: { host: "pve1", user: "root" } },
    { name: "pve2", apiUrl: "https://pve2:8006", ssh: { host: "pve2", user: "root" } },
    { name: "pve3", apiUrl: "https://pve3:8006" }
  ],
  auth: { _tag: "Token", tokenId: "root@pam!t", secret: Redacted.make("x") },
  ...over
})

const failing = (reason: ProxmoxErrorReason) => {
  const calls: Array<string> = []
  return {
    calls,
    call: (r: PveRequest) =>
      Effect.suspend(() => {
        calls.push(r.path)
        return Effect.fail(new ProxmoxError({ operation: `${r.method} ${r.path}`, reason }))
      })
  }
}
const answering = (data: unknown) => {
  const calls: Array<string> = []
  return {
    calls,
    call: (r: PveRequest) =>
      Effect.sync(() => {
        calls.push(r.path)
        return data
      })
  }
}

const tls = new TlsUntrusted({
  code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  fingerprint: "AA:BB",
  detail: "unable to verify"
})
const cases: Array<[string, ProxmoxErrorReason, boolean]> = [
  ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", tls, true],
  ["fingerprint mismatch", new TlsUntrusted({ code: "ERR_TLS_PIN_MISMATCH", detail: "pin" }), true],
  ["refused", new Unreachable({ kind: "refused", transport: "rest", code: "ECONNREFUSED", detail: "" }), true],
  ["timeout", new Unreachable({ kind: "timeout", transport: "rest", code: "ABORT_ERR", detail: "" }), true],
  ["dns", new Unreachable({ kind: "dns", transport: "rest", code: "ENOTFOUND", detail: "" }), true],
  ["596", new ProxyError({ status: 596, detail: "x", explanation: "y" }), true],
  ["400", new InvalidParameter({ errors: { vmid: "bad" }, detail: "Parameter verification failed." }), false],
  ["401", new AuthRejected({ detail: "Authentication failed!" }), false],
  ["403", new PermissionDenied({ path: "/vms/100", privilege: "VM.Audit", detail: "" }), false],
  ["500", new ApiError({ status: 500, detail: "VM 100 is running - destroy failed" }), false]
]

describe("FallbackTransport", () => {
  for (const [name, reason, falls] of cases) {
    it.effect(`${name}: ${falls ? "switches the node to SSH once" : "surfaces as is, no SSH"}`, () =>
      Effect.gen(function* () {
        const events: Array<ProxmoxClientEvent> = []
        const rest = failing(reason)
        const ssh = answering({ ok: 1 })
        const t = makeFallbackTransport(config({ onEvent: (e) => events.push(e) }), rest, ssh)
        const first = yield* Effect.exit(t.call({ method: "GET", path: "/nodes/pve2/status" }))
        const second = yield* Effect.exit(t.call({ method: "GET", path: "/nodes/pve2/status" }))
        if (falls) {
          assert.deepStrictEqual(first, Exit.succeed({ ok: 1 }))
          assert.deepStrictEqual(second, Exit.succeed({ ok: 1 }))
          assert.strictEqual(rest.calls.length, 1, "REST is not tried again after the switch")
          assert.strictEqual(ssh.calls.length, 2)
          assert.strictEqual(t.transportOf("pve2"), "ssh")
          assert.strictEqual(t.transportOf("pve1"), "rest")
          assert.strictEqual(events.length, 1)
          assert.deepInclude(events[0], { _tag: "FallbackToSsh", node: "pve2", reason: reason._tag })
          if (reason === tls) assert.strictEqual((events[0] as { fingerprint?: string }).fingerprint, "AA:BB")
        } else {
          assert.isTrue(Exit.isFailure(first))
          assert.strictEqual(rest.calls.length, 2)
          assert.strictEqual(ssh.calls.length, 0)
          assert.strictEqual(events.length, 0)
          assert.strictEqual(t.transportOf("pve2"), "rest")
        }
      })
    )
  }

  it.effect("cluster-wide calls belong to the default node; fallback off or no SSH target → the error surfaces", () =>
    Effect.gen(function* () {
      const rest = failing(tls)
      const ssh = answering("ok")
      const t = makeFallbackTransport(config(), rest, ssh)
      assert.strictEqual(yield* t.call({ method: "GET", path: "/cluster/resources" }), "ok")
      assert.strictEqual(t.transportOf("pve1"), "ssh")
      const off = makeFallbackTransport(config({ fallback: false }), failing(tls), answering("ok"))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(off.call({ method: "GET", path: "/nodes/pve1/status" }))))
      // pve3 has no ssh of its own: pvesh on the default node (pve1) forwards to it
      const viaDefault = makeFallbackTransport(config(), failing(tls), answering("ok"))
      assert.strictEqual(yield* viaDefault.call({ method: "GET", path: "/nodes/pve3/status" }), "ok")
      const noSsh = makeFallbackTransport(
        config({ nodes: [{ name: "pve1", apiUrl: "https://pve1:8006" }] }),
        failing(tls),
        answering("ok")
      )
      const exit = yield* Effect.exit(noSsh.call({ method: "GET", path: "/nodes/pve1/status" }))
      assert.isTrue(Exit.isFailure(exit))
    })
  )
})

describe("retries", () => {
  it.effect("transient lock timeouts are retried with backoff, then succeed", () =>
    Effect.gen(function* () {
      let n = 0
      const api = makeProxmoxApi({
        call: (r) =>
          Effect.suspend(() => {
            n++
            return n < 3
              ? Effect.fail(
                  new ProxmoxError({ operation: r.path, reason: new Locked({ lock: "flock", detail: "got timeout" }) })
                )
              : Effect.succeed("105")
          })
      })
      const fiber = yield* Effect.forkChild(api.nextVmid)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), 105)
      assert.strictEqual(n, 3)
    })
  )

  it.effect("non-idempotent create is retried only after confirming the VM does not exist", () =>
    Effect.gen(function* () {
      const seen: Array<string> = []
      let creates = 0
      const api = makeProxmoxApi({
        call: (r) =>
          Effect.suspend((): Effect.Effect<unknown, ProxmoxError> => {
            seen.push(`${r.method} ${r.path}`)
            if (r.method === "POST") {
              creates++
              return creates === 1
                ? Effect.fail(
                    new ProxmoxError({
                      operation: "x",
                      reason: new ProxyError({ status: 599, detail: "", explanation: "" })
                    })
                  )
                : Effect.succeed("UPID:pve:00000001:00000002:00000003:qmcreate:200:root@pam:")
            }
            if (r.path === "/nodes/pve/tasks" || r.path === "/cluster/resources") return Effect.succeed([])
            return Effect.succeed({
              node: "pve",
              status: "stopped",
              exitstatus: "OK",
              type: "qmcreate",
              user: "root@pam"
            })
          })
      })
      const fiber = yield* Effect.forkChild(api.createVm({ node: "pve", vmid: 200, name: "a" }))
      yield* TestClock.adjust("5 seconds")
      const result = yield* Fiber.join(fiber)
      assert.strictEqual(result.exitstatus, "OK")
      assert.deepStrictEqual(seen.slice(0, 4), [
        "POST /nodes/pve/qemu",
        "GET /nodes/pve/tasks",
        "GET /cluster/resources",
        "POST /nodes/pve/qemu"
      ])
    })
  )

  it.effect("non-idempotent create is NOT retried when the VM exists after the failure", () =>
    Effect.gen(function* () {
      let creates = 0
      const api = makeProxmoxApi({
        call: (r) =>
          Effect.suspend(() => {
            if (r.method === "POST") {
              creates++
              return Effect.fail(
                new ProxmoxError({
                  operation: "x",
                  reason: new ProxyError({ status: 599, detail: "", explanation: "" })
                })
              )
            }
            // no create task of ours, but a VM 200: someone else's
            if (r.path === "/nodes/pve/tasks") return Effect.succeed([])
            return Effect.succeed([{ vmid: 200, node: "pve", type: "qemu", status: "unknown" }])
          })
      })
      const fiber = yield* Effect.forkChild(Effect.exit(api.createVm({ node: "pve", vmid: 200, name: "a" })))
      yield* TestClock.adjust("5 seconds")
      const exit = yield* Fiber.join(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(creates, 1)
    })
  )

  it.effect("destroy after a reset counts as done when the VM is gone", () =>
    Effect.gen(function* () {
      let deletes = 0
      const api = makeProxmoxApi({
        call: (r) =>
          Effect.suspend(() => {
            if (r.method === "DELETE") {
              deletes++
              return Effect.fail(
                new ProxmoxError({
                  operation: "x",
                  reason: new Unreachable({ kind: "reset", transport: "rest", code: "ECONNRESET", detail: "" })
                })
              )
            }
            return Effect.succeed([])
          })
      })
      const fiber = yield* Effect.forkChild(api.destroyVm("pve", 200))
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(fiber)
      assert.strictEqual(deletes, 1)
    })
  )
})

describe("a request that needs root@pam (asRoot)", () => {
  const create: PveRequest = { method: "POST", path: "/nodes/pve1/qemu", params: { vmid: 100 }, asRoot: true }

  it.effect("goes over SSH while the node is on REST, and its failure names SSH", () =>
    Effect.gen(function* () {
      const rest = answering("UPID:rest")
      const ssh = answering("UPID:ssh")
      const t = makeFallbackTransport(config(), rest, ssh)
      assert.strictEqual(yield* t.call(create), "UPID:ssh")
      assert.deepStrictEqual([rest.calls, ssh.calls], [[], ["/nodes/pve1/qemu"]])
      assert.strictEqual(t.transportOf("pve1"), "rest")
      // the node's other requests stay on REST
      assert.strictEqual(yield* t.call({ method: "GET", path: "/nodes/pve1/qemu" }), "UPID:rest")

      const refused = new ApiError({ status: 500, detail: "unable to create VM 100" })
      const failed = yield* makeFallbackTransport(config(), rest, failing(refused)).call(create).pipe(Effect.flip)
      assert.deepInclude(failed, { node: "pve1", transport: "ssh", reason: refused })
    })
  )

  it.effect("with no SSH target anywhere fails before sending anything, saying why", () =>
    Effect.gen(function* () {
      const rest = answering("UPID:rest")
      const ssh = answering("UPID:ssh")
      const noSsh = config({ nodes: [{ name: "pve1", apiUrl: "https://pve1:8006" }] })
      const error = yield* makeFallbackTransport(noSsh, rest, ssh).call(create).pipe(Effect.flip)
      assert.deepStrictEqual([rest.calls, ssh.calls], [[], []])
      assert.include(error.reason.message, "needs root@pam (an absolute path)")
      assert.include(error.reason.message, "pve1 has no ssh configured")
    })
  )

  it.effect("goes over REST when REST logs in as root@pam with a password", () =>
    Effect.gen(function* () {
      const rest = answering("UPID:rest")
      const ssh = answering("UPID:ssh")
      const root = config({ auth: { _tag: "Password", username: "root@pam", password: Redacted.make("pw") } })
      assert.strictEqual(yield* makeFallbackTransport(root, rest, ssh).call(create), "UPID:rest")
      assert.deepStrictEqual(ssh.calls, [])
    })
  )
})
