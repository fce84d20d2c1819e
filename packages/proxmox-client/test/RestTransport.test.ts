import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import {
  makeRestTransport,
  normalizeFingerprint,
  ProxmoxApi,
  ProxmoxClientConfig,
  type ProxmoxClientConfigShape,
  type ProxmoxClientEvent,
  type ProxmoxError
} from "../src/index.js"
import { fakePve, restConfig, TOKEN_SECRET, testCerts } from "./helpers.js"
import { apiLayer, errorOf, simConfig, withSim } from "./simulator.js"

const VERSION = { data: { version: "8.2.4", release: "8.2", repoid: "faa83925c9641325" } }

const api = (config: ProxmoxClientConfigShape) =>
  ProxmoxApi.layerRest.pipe(Layer.provide(ProxmoxClientConfig.layer(config)))

const failureOf = <A>(effect: Effect.Effect<A, ProxmoxError, ProxmoxApi>, config: ProxmoxClientConfigShape) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(effect.pipe(Effect.provide(api(config))))
    assert.isTrue(Exit.isFailure(exit), "expected a failure")
    const error = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
    assert.isDefined(error)
    const e = (error as unknown as { error: ProxmoxError }).error
    // the token secret never leaks into errors
    assert.notInclude(e.message, TOKEN_SECRET)
    assert.notInclude(JSON.stringify(e), TOKEN_SECRET)
    assert.notInclude(String(e), TOKEN_SECRET)
    return e
  })

const version = Effect.gen(function* () {
  const pve = yield* ProxmoxApi
  return yield* pve.version
})

describe("RestTransport trust", () => {
  it.live("trusts exactly the configured CA, sends the token, reuses one connection", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", () => ({ status: 200, body: VERSION }))
      const config = restConfig(server.port, { tls: { ca: testCerts().caPem } })
      const result = yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        const a = yield* pve.version
        for (let i = 0; i < 9; i++) yield* pve.version
        return a
      }).pipe(Effect.provide(api(config)))
      assert.deepStrictEqual(result, VERSION.data)
      assert.strictEqual(server.requests.length, 10)
      assert.strictEqual(server.requests[0]?.url, "/api2/json/version")
      assert.strictEqual(server.requests[0]?.headers.authorization, `PVEAPIToken=root@pam!reconciler=${TOKEN_SECRET}`)
      // keep-alive: 10 sequential requests over at most 2 TLS connections (undici may open a second one while the
      // first is being released)
      assert.isAtMost(server.connections(), 2)
      assert.isAtMost(new Set(server.requests.map((r) => r.remotePort)).size, 2)
    })
  )

  it.live("a PVE-style leaf without its CA → TlsUntrusted UNABLE_TO_VERIFY_LEAF_SIGNATURE with the fingerprint", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", () => ({ status: 200, body: VERSION }))
      const e = yield* failureOf(version, restConfig(server.port))
      assert.strictEqual(e.reason._tag, "TlsUntrusted")
      if (e.reason._tag !== "TlsUntrusted") return
      assert.strictEqual(e.reason.code, "UNABLE_TO_VERIFY_LEAF_SIGNATURE")
      assert.strictEqual(e.reason.fingerprint, normalizeFingerprint(testCerts().leafFingerprint))
      assert.strictEqual(e.operation, "version")
      assert.strictEqual(e.node, "pve1")
      assert.strictEqual(server.requests.length, 0)
    })
  )

  it.live("leaf + CA in the chain → SELF_SIGNED_CERT_IN_CHAIN; self-signed → DEPTH_ZERO_SELF_SIGNED_CERT", () =>
    Effect.gen(function* () {
      const chain = yield* fakePve("chain", () => ({ status: 200, body: VERSION }))
      const self = yield* fakePve("self", () => ({ status: 200, body: VERSION }))
      const a = yield* failureOf(version, restConfig(chain.port))
      const b = yield* failureOf(version, restConfig(self.port))
      assert.strictEqual(a.reason._tag === "TlsUntrusted" ? a.reason.code : a.reason._tag, "SELF_SIGNED_CERT_IN_CHAIN")
      assert.strictEqual(
        b.reason._tag === "TlsUntrusted" ? b.reason.code : b.reason._tag,
        "DEPTH_ZERO_SELF_SIGNED_CERT"
      )
    })
  )

  it.live("fingerprint pin: matching pin works, another pin fails with ERR_TLS_PIN_MISMATCH", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", () => ({ status: 200, body: VERSION }))
      const pin = testCerts().leafFingerprint.toLowerCase()
      const ok = yield* version.pipe(Effect.provide(api(restConfig(server.port, { tls: { fingerprint: pin } }))))
      assert.strictEqual(ok.version, "8.2.4")
      const wrong = "AA:".repeat(31).concat("AA")
      const e = yield* failureOf(version, restConfig(server.port, { tls: { fingerprint: wrong } }))
      assert.strictEqual(e.reason._tag, "TlsUntrusted")
      if (e.reason._tag !== "TlsUntrusted") return
      assert.strictEqual(e.reason.code, "ERR_TLS_PIN_MISMATCH")
      assert.strictEqual(e.reason.fingerprint, normalizeFingerprint(testCerts().leafFingerprint))
    })
  )

  it.live("insecure: accepts any certificate and emits TlsInsecure once", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("self", () => ({ status: 200, body: VERSION }))
      const events: Array<ProxmoxClientEvent> = []
      const config = restConfig(server.port, { tls: { insecure: true }, onEvent: (e) => events.push(e) })
      yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        yield* pve.version
        yield* pve.version
      }).pipe(Effect.provide(api(config)))
      assert.deepStrictEqual(events, [{ _tag: "TlsInsecure", node: "pve1" }])
    })
  )
})

describe("RestTransport errors", () => {
  const answer = (reply: Parameters<typeof fakePve>[1]) =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", reply)
      return restConfig(server.port, { tls: { ca: testCerts().caPem }, retries: 0 })
    })

  it.live("400 → InvalidParameter with the per-field errors", () =>
    Effect.gen(function* () {
      const config = yield* answer(() => ({
        status: 400,
        statusText: "Parameter verification failed.",
        body: { data: null, errors: { vmid: "type check ('integer') failed - got 'x'\n" } }
      }))
      const e = yield* failureOf(version, config)
      assert.strictEqual(e.reason._tag, "InvalidParameter")
      if (e.reason._tag === "InvalidParameter") {
        assert.deepStrictEqual(e.reason.errors, { vmid: "type check ('integer') failed - got 'x'" })
      }
    })
  )

  it.live("401 → AuthRejected; 403 → PermissionDenied with path and privilege", () =>
    Effect.gen(function* () {
      const c401 = yield* answer(() => ({ status: 401, statusText: "Authentication failed!", contentType: null }))
      const c403 = yield* answer(() => ({
        status: 403,
        statusText: "Permission check failed (/vms/100, VM.Audit)",
        body: { data: null }
      }))
      const a = yield* failureOf(version, c401)
      const b = yield* failureOf(version, c403)
      assert.strictEqual(a.reason._tag, "AuthRejected")
      assert.strictEqual(b.reason._tag, "PermissionDenied")
      if (b.reason._tag === "PermissionDenied") {
        assert.strictEqual(b.reason.path, "/vms/100")
        assert.strictEqual(b.reason.privilege, "VM.Audit")
      }
    })
  )

  it.live("500 → ApiError / NotFound / Locked by message; 596 → ProxyError with the explanation", () =>
    Effect.gen(function* () {
      const messages: Record<string, string> = {
        "/api2/json/nodes/pve1/qemu/100/status/current": "VM 100 is running - destroy failed",
        "/api2/json/nodes/pve1/qemu/101/status/current":
          "Configuration file 'nodes/pve1/qemu-server/101.conf' does not exist",
        "/api2/json/nodes/pve1/qemu/102/status/current": "VM is locked (create)"
      }
      const config = yield* answer((_m, url) =>
        url.includes("/103/")
          ? {
              status: 596,
              statusText: "tls_process_server_certificate: certificate verify failed",
              body: { data: null }
            }
          : { status: 500, statusText: messages[url] ?? "?", body: { data: null } }
      )
      const status = (vmid: number) =>
        Effect.gen(function* () {
          const pve = yield* ProxmoxApi
          return yield* pve.vmStatus("pve1", vmid)
        })
      const reasons = []
      for (const vmid of [100, 101, 102, 103]) reasons.push((yield* failureOf(status(vmid), config)).reason)
      assert.deepStrictEqual(
        reasons.map((r) => r._tag),
        ["ApiError", "NotFound", "Locked", "ProxyError"]
      )
      const [apiError, , locked, proxy] = reasons
      assert.strictEqual(apiError?._tag === "ApiError" && apiError.status, 500)
      assert.strictEqual(locked?._tag === "Locked" && locked.lock, "create")
      assert.isTrue(
        proxy?._tag === "ProxyError" && proxy.status === 596 && proxy.explanation.includes("pvecm updatecerts")
      )
    })
  )

  it.live("GET /access/permissions (optionally for a path) decodes 0/1 privileges", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", (_m, url) =>
        url === "/api2/json/access/permissions?path=%2Fvms%2F100"
          ? { status: 200, body: { data: { "/vms/100": { "VM.Audit": 1, "VM.PowerMgmt": 0 } } } }
          : { status: 500, statusText: `unexpected ${url}`, body: { data: null } }
      )
      const perms = yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        return yield* pve.permissions("/vms/100")
      }).pipe(Effect.provide(api(restConfig(server.port, { tls: { ca: testCerts().caPem } }))))
      assert.deepStrictEqual(perms, { "/vms/100": { "VM.Audit": true, "VM.PowerMgmt": false } })
    })
  )

  it.live("refused → Unreachable(refused); no answer in time → Unreachable(timeout)", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(
        () =>
          new Promise<number>((resolve) => {
            const s = net.createServer()
            s.listen(0, "127.0.0.1", () => {
              const p = (s.address() as net.AddressInfo).port
              s.close(() => resolve(p))
            })
          })
      )
      const refused = yield* failureOf(version, restConfig(port, { retries: 0 }))
      assert.strictEqual(refused.reason._tag === "Unreachable" && refused.reason.kind, "refused")
      // no port in the URL → 8006 (proxmox-api itself would use 443)
      const defaultPort = yield* failureOf(version, {
        ...restConfig(port, { retries: 0 }),
        nodes: [{ name: "pve1", apiUrl: "https://127.0.0.1" }]
      })
      assert.include(defaultPort.reason._tag === "Unreachable" ? defaultPort.reason.detail : "", "127.0.0.1:8006")
      const server = yield* fakePve("leaf", () => "hang")
      const timeout = yield* failureOf(
        version,
        restConfig(server.port, { tls: { ca: testCerts().caPem }, timeouts: { request: 300 }, retries: 0 })
      )
      assert.strictEqual(timeout.reason._tag === "Unreachable" && timeout.reason.kind, "timeout")
    })
  )

  it.live(
    "a node that takes the connection but never completes the handshake: Unreachable(timeout) after timeouts.connect, one connection",
    () =>
      Effect.gen(function* () {
        // accepts TCP and stays silent: the TLS handshake never completes, like a connection to a host that is gone
        const silent = yield* Effect.acquireRelease(
          Effect.promise(
            () =>
              new Promise<{ server: net.Server; sockets: Set<net.Socket>; port: number }>((resolve) => {
                const sockets = new Set<net.Socket>()
                const server = net.createServer((socket) => {
                  sockets.add(socket)
                  socket.on("error", () => {})
                })
                server.listen(0, "127.0.0.1", () =>
                  resolve({ server, sockets, port: (server.address() as net.AddressInfo).port })
                )
              })
          ),
          ({ server, sockets }) =>
            Effect.promise(() => {
              for (const socket of sockets) socket.destroy()
              return new Promise<void>((resolve) => server.close(() => resolve()))
            })
        )
        // the request timeout is far off: only the connect timeout can end the call
        const e = yield* failureOf(
          version,
          restConfig(silent.port, {
            tls: { ca: testCerts().caPem },
            timeouts: { connect: 200, request: "1 hour" },
            retries: 0
          })
        )
        assert.strictEqual(e.node, "pve1")
        assert.deepInclude(e.reason, { _tag: "Unreachable", kind: "timeout", code: "ETIMEDOUT" })
        assert.include(e.reason._tag === "Unreachable" ? e.reason.detail : "", "connect timeout after 200 ms")
        // proxmox-api's re-send of a failed request is not made after a timeout: one connect timeout, not two
        assert.strictEqual(silent.sockets.size, 1)
      })
  )

  it.live("password auth logs in once (ticket + CSRF); a rejected login is AuthRejected without the password", () =>
    Effect.gen(function* () {
      const server = yield* fakePve("leaf", (method, url, body) => {
        if (url === "/api2/json/access/ticket") {
          return body.includes("password=right")
            ? {
                status: 200,
                body: {
                  data: { ticket: "PVE:root@pam:ABC::sig", CSRFPreventionToken: "ABC:tok", username: "root@pam" }
                }
              }
            : { status: 401, statusText: "authentication failure", contentType: null }
        }
        return method === "GET" ? { status: 200, body: VERSION } : { status: 500, statusText: "?" }
      })
      const base = restConfig(server.port, { tls: { ca: testCerts().caPem } })
      const good = {
        ...base,
        auth: { _tag: "Password" as const, username: "root@pam", password: Redacted.make("right") }
      }
      yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        yield* pve.version
        yield* pve.version
      }).pipe(Effect.provide(api(good)))
      assert.strictEqual(server.requests.filter((r) => r.url === "/api2/json/access/ticket").length, 1)
      assert.strictEqual(server.requests[1]?.headers.cookie, "PVEAuthCookie=PVE:root@pam:ABC::sig")
      const bad = {
        ...base,
        auth: { _tag: "Password" as const, username: "root@pam", password: Redacted.make("wrong-pw") }
      }
      const e = yield* failureOf(version, bad)
      assert.strictEqual(e.reason._tag, "AuthRejected")
      assert.notInclude(JSON.stringify(e), "wrong-pw")
    })
  )
})

describe("RestTransport: a lost answer (sim responseLost)", () => {
  const stop = "/nodes/pve/qemu/100/status/stop"
  const logOf = (
    sim: { requests: () => ReadonlyArray<{ method?: string; path?: string; responseLost?: true }> },
    path: string
  ) =>
    sim
      .requests()
      .filter((r) => r.path === path)
      .map((r) => `${r.method}${r.responseLost === true ? " lost" : ""}`)

  it.live("a POST that starts a task is sent once: one task, and the caller gets the reset", () =>
    Effect.gen(function* () {
      const sim = yield* withSim({
        faults: [{ kind: "responseLost", node: "pve", method: "POST", path: stop, times: 1 }]
      })
      // the transport itself: ProxmoxApi would look the task up (see nonIdempotent.test.ts)
      const rest = yield* makeRestTransport.pipe(Effect.provide(ProxmoxClientConfig.layer(simConfig(sim))))
      const e = errorOf(yield* Effect.exit(rest.call({ method: "POST", path: stop })))
      assert.strictEqual(e.reason._tag, "Unreachable")
      if (e.reason._tag === "Unreachable") {
        assert.strictEqual(e.reason.kind, "reset")
        assert.strictEqual(e.reason.code, "ECONNRESET")
      }
      assert.strictEqual(e.node, "pve")
      assert.deepStrictEqual(logOf(sim, stop), ["POST lost"])
      const stops = sim.state().tasks.filter((t) => t.type === "qmstop" && t.id === "100")
      assert.lengthOf(stops, 1, "PVE performed the stop once")
    })
  )

  it.live("a GET whose answer was lost is sent again and answered, as before", () =>
    Effect.gen(function* () {
      const path = "/nodes/pve/qemu/100/status/current"
      const sim = yield* withSim({ faults: [{ kind: "responseLost", node: "pve", method: "GET", path, times: 1 }] })
      // ProxmoxApi's own retries are off: what is measured is what the transport sends
      const layer = yield* apiLayer(sim, "rest", { retries: 0 })
      const status = yield* Effect.gen(function* () {
        const pve = yield* ProxmoxApi
        return yield* pve.vmStatus("pve", 100)
      }).pipe(Effect.provide(layer))
      assert.strictEqual(status.status, "running")
      assert.deepStrictEqual(logOf(sim, path), ["GET lost", "GET"])
    })
  )

  it.live(
    "ProxmoxApi does not send it again either (its retries allow it): the task the POST started is the result",
    () =>
      Effect.gen(function* () {
        const sim = yield* withSim({
          faults: [{ kind: "responseLost", node: "pve", method: "POST", path: stop, times: 1 }]
        })
        const layer = yield* apiLayer(sim, "rest", { retries: 1 })
        const task = yield* Effect.gen(function* () {
          const pve = yield* ProxmoxApi
          return yield* pve.stopVm("pve", 100)
        }).pipe(Effect.provide(layer))
        assert.strictEqual(task.exitstatus, "OK")
        assert.deepStrictEqual(logOf(sim, stop), ["POST lost"])
      })
  )
})
