import { AsyncLocalStorage } from "node:async_hooks"
import { mayHaveBeenSent, type TlsTrust, type TrustFetchInit } from "../TlsTrust.js"
import { innermostCode } from "./classify.js"

/** The attempt of one request that must not be sent again in the same `doRequest`. */
interface Failed {
  readonly method: string
  readonly url: string
  readonly error: unknown
}

/** One `doRequest`: what its attempts have seen so far. */
interface Attempts {
  failed: Failed | undefined
}

/**
 * Did this attempt time out: proxmox-api's `queryTimeout` aborted it (its `signal`), or no connection was made within
 * the connect timeout (`ETIMEDOUT` from `makeTlsTrust`)?
 */
const timedOut = (error: unknown, init: TrustFetchInit | undefined): boolean =>
  init?.signal?.aborted === true || innermostCode(error)?.code === "ETIMEDOUT"

/**
 * `proxmox-api`'s `doRequest` sends a request a second time, once, when its `fetch` throws, whatever the method and
 * whatever the failure. Two cases of that second send are refused here, and `doRequest` rethrows the first attempt's
 * error, so the caller sees (and classifies) what happened to the first:
 *
 * - an attempt that timed out (its `queryTimeout` ran out, or its connection was not made within the connect
 *   timeout), whatever the method: a node that did not answer in time will not answer the same request sent at once
 *   again, and a second timeout would only double the wait before the node falls back to SSH or the call fails;
 * - a request that may change something (anything but GET and HEAD) whose first attempt failed after it may have
 *   reached PVE (a reset, a lost answer): that second send would start a second task, create twice, delete what is
 *   gone.
 *
 * Any other failure (for a GET: a reset of a pooled keep-alive connection the server had just closed; for any method:
 * refused, DNS, TLS or pin failure, nothing of it written, see `TrustFetchError`) still gets its second attempt.
 *
 * The second send is recognised by identity, not by time or content: `run` gives each `doRequest` its own record (an
 * `AsyncLocalStorage` context, which the re-send runs in, as it is `doRequest` calling itself), and the `fetch` handed
 * to `proxmox-api` refuses, within that record only, the method and URL whose attempt failed so. Two identical
 * requests in flight at once, and our own deliberate retries (`ProxmoxApi`'s backoff, which calls the transport again
 * and so `run` again), each have a record of their own and are not affected.
 *
 * @internal
 */
export const makeResendGuard = (
  fetch: TlsTrust["fetch"]
): {
  readonly fetch: TlsTrust["fetch"]
  readonly run: <A>(request: () => Promise<A>) => Promise<A>
} => {
  const requests = new AsyncLocalStorage<Attempts>()
  const guarded: TlsTrust["fetch"] = (input, init) => {
    const attempts = requests.getStore()
    if (attempts === undefined) return fetch(input, init)
    const method = (init?.method ?? "GET").toUpperCase()
    const url = String(input)
    const failed = attempts.failed
    if (failed !== undefined && failed.method === method && failed.url === url) return Promise.reject(failed.error)
    const write = method !== "GET" && method !== "HEAD"
    return fetch(input, init).catch((error: unknown) => {
      if (timedOut(error, init) || (write && mayHaveBeenSent(error))) attempts.failed = { method, url, error }
      throw error
    })
  }
  const run = <A>(request: () => Promise<A>): Promise<A> => requests.run({ failed: undefined }, request)
  return { fetch: guarded, run }
}
