import { assert, describe, it } from "@effect/vitest"
import { ProxmoxEngine } from "proxmox-api"
import { makeResendGuard } from "../src/internal/resendGuard.js"
import type { TlsTrust, TrustFetchInit, TrustResponse } from "../src/TlsTrust.js"

const answer = (data: unknown): TrustResponse => ({
  status: 200,
  statusText: "OK",
  ok: true,
  headers: { get: (name) => (name.toLowerCase() === "content-type" ? "application/json;charset=UTF-8" : null) },
  text: () => Promise.resolve(JSON.stringify({ data })),
  json: () => Promise.resolve({ data })
})

/** A `TlsTrust.fetch` failure as `makeTlsTrust` rejects: `sent` says whether the request may have been written. */
const failure = (sent: boolean, code = sent ? "ECONNRESET" : "ECONNREFUSED") =>
  Object.assign(
    new TypeError("fetch failed", {
      cause: Object.assign(new Error(sent ? "socket hang up" : "connect ECONNREFUSED"), { code })
    }),
    { sent }
  )

type Step = (url: string, init: TrustFetchInit | undefined) => Promise<TrustResponse>

/** A real proxmox-api engine over a scripted fetch (one step per fetch, in order), through `makeResendGuard`. */
const engineWith = (steps: Array<Step>, queryTimeout?: number) => {
  const sent: Array<string> = []
  const fetch: TlsTrust["fetch"] = (input, init) => {
    sent.push(`${init?.method ?? "GET"} ${String(input)} ${typeof init?.body === "string" ? init.body : ""}`.trim())
    const step = steps.shift()
    if (step === undefined) return Promise.reject(new Error("unexpected fetch"))
    return step(String(input), init)
  }
  const once = makeResendGuard(fetch)
  const engine = new ProxmoxEngine({
    host: "pve.test",
    port: 8006,
    tokenID: "root@pam!t",
    tokenSecret: "0b6c3e2a-1111-4222-8333-944455556666",
    fetch: once.fetch as never,
    ...(queryTimeout !== undefined ? { queryTimeout } : {})
  })
  const request = (method: string, path: string, params: Record<string, string> = {}) =>
    once.run(() => engine.doRequest(method, `/api2/json${path}`, path, params))
  return { sent, request }
}

const rootCause = (e: unknown): unknown => {
  let current = e
  while (current instanceof Error && current.cause !== undefined) current = current.cause
  return current
}

describe("resendGuard: proxmox-api's re-send of a failed request", () => {
  it("a POST whose attempt may have reached PVE is not sent again; the caller gets that attempt's error", async () => {
    const first = failure(true)
    const { sent, request } = engineWith([() => Promise.reject(first), () => Promise.resolve(answer("UPID:2"))])
    const error = await request("POST", "/nodes/pve/qemu/100/status/start").then(
      () => undefined,
      (e: unknown) => e
    )
    assert.deepStrictEqual(sent, ["POST https://pve.test:8006/api2/json/nodes/pve/qemu/100/status/start"])
    assert.instanceOf(error, Error)
    assert.match((error as Error).message, /^FaILED to call POST .* cause by:socket hang up$/)
    assert.strictEqual((error as Error).cause, first)
    assert.strictEqual((rootCause(error) as { code?: string }).code, "ECONNRESET")
  })

  it("PUT and DELETE alike", async () => {
    for (const method of ["PUT", "DELETE"]) {
      const { sent, request } = engineWith([() => Promise.reject(failure(true)), () => Promise.resolve(answer(null))])
      const error = await request(method, "/nodes/pve/qemu/100/config", method === "PUT" ? { cores: "2" } : {}).then(
        () => undefined,
        (e: unknown) => e
      )
      assert.instanceOf(error, Error)
      assert.lengthOf(sent, 1, method)
    }
  })

  it("a POST that failed before anything was written still gets proxmox-api's second attempt", async () => {
    const { sent, request } = engineWith([
      () => Promise.reject(failure(false)),
      () => Promise.resolve(answer("UPID:1"))
    ])
    assert.strictEqual(await request("POST", "/nodes/pve/qemu", { vmid: "120" }), "UPID:1")
    assert.lengthOf(sent, 2)
  })

  /** A fetch that never answers: it rejects as `makeTlsTrust`'s does when its `signal` aborts (proxmox-api's timeout). */
  const held: Step = (_url, init) =>
    new Promise<TrustResponse>((_, reject) => {
      init?.signal?.addEventListener("abort", () =>
        reject(
          Object.assign(
            new TypeError("fetch failed", {
              cause: Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR" })
            }),
            { sent: true }
          )
        )
      )
    })

  it("a request proxmox-api's queryTimeout aborted is not sent again, GET or POST: one timeout, not two", async () => {
    for (const method of ["GET", "POST"]) {
      const { sent, request } = engineWith([held, () => Promise.resolve(answer("late"))], 20)
      const error = await request(method, "/nodes/pve/status").then(
        () => undefined,
        (e: unknown) => e
      )
      assert.lengthOf(sent, 1, method)
      assert.instanceOf(error, Error, method)
      assert.strictEqual((rootCause(error) as { code?: string }).code, "ABORT_ERR", method)
    }
  })

  it("an attempt whose connection timed out (ETIMEDOUT, nothing written) is not sent again either", async () => {
    for (const method of ["GET", "POST"]) {
      const { sent, request } = engineWith([
        () => Promise.reject(failure(false, "ETIMEDOUT")),
        () => Promise.resolve(answer("late"))
      ])
      const error = await request(method, "/nodes/pve/status").then(
        () => undefined,
        (e: unknown) => e
      )
      assert.lengthOf(sent, 1, method)
      assert.strictEqual((rootCause(error) as { code?: string }).code, "ETIMEDOUT", method)
    }
  })

  it("a GET is sent again as before after any other failure (a reset keep-alive connection)", async () => {
    const { sent, request } = engineWith([() => Promise.reject(failure(true)), () => Promise.resolve(answer("8.4.1"))])
    assert.strictEqual(await request("GET", "/version"), "8.4.1")
    assert.lengthOf(sent, 2)
  })

  it("identical POSTs in flight at once, and a later call of the same POST (our own retry), are each sent", async () => {
    let fail: (e: unknown) => void = () => {}
    const { sent, request } = engineWith([
      () =>
        new Promise<TrustResponse>((_, reject) => {
          fail = reject
        }),
      () => Promise.resolve(answer("UPID:b")),
      () => Promise.resolve(answer("UPID:c"))
    ])
    const path = "/nodes/pve/qemu/100/status/start"
    const a = request("POST", path).then(
      () => "answered",
      () => "failed"
    )
    const b = await request("POST", path)
    fail(failure(true))
    assert.strictEqual(await a, "failed")
    assert.strictEqual(b, "UPID:b")
    // a new call after the failure (as ProxmoxApi's backoff makes) is a request of its own
    assert.strictEqual(await request("POST", path), "UPID:c")
    assert.lengthOf(sent, 3)
    assert.isTrue(sent.every((s) => s === sent[0]))
  })
})
