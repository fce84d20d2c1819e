import { AsyncLocalStorage } from "node:async_hooks"
import { mayHaveBeenSent, type TlsTrust } from "../TlsTrust.js"

/** The first attempt of one request that may have reached PVE before it failed. */
interface Failed {
  readonly method: string
  readonly url: string
  readonly error: unknown
}

/** One `doRequest` of a request that may change something: what its attempts have seen so far. */
interface Write {
  failed: Failed | undefined
}

/**
 * `proxmox-api`'s `doRequest` sends a request a second time, once, when its `fetch` throws, whatever the method and
 * whatever the failure. For a request that may change something (anything but GET and HEAD) whose first attempt
 * failed after it may have reached PVE (a reset, a lost answer, the `queryTimeout` abort of a slow answer), that second
 * send would start a second task, create twice, delete what is gone: it is refused here, and `doRequest` rethrows the
 * first attempt's error, so the caller sees (and classifies) what happened to the request PVE may have acted on. A
 * failure before anything was written (refused, DNS, connect timeout, TLS or pin failure: see `TrustFetchError`) still
 * gets its second attempt, which is harmless; GET and HEAD are left to `proxmox-api` as they are.
 *
 * The second send is recognised by identity, not by time or content: `run` gives each `doRequest` of a write its own
 * record (an `AsyncLocalStorage` context, which the re-send runs in, as it is `doRequest` calling itself), and the
 * `fetch` handed to `proxmox-api` refuses, within that record only, the method and URL whose attempt failed after it
 * may have been sent. Two identical requests in flight at once, and our own deliberate retries (`ProxmoxApi`'s
 * backoff, which calls the transport again and so `run` again), each have a record of their own and are not affected.
 *
 * @internal
 */
export const makeWriteOnce = (
  fetch: TlsTrust["fetch"]
): {
  readonly fetch: TlsTrust["fetch"]
  readonly run: <A>(method: string, request: () => Promise<A>) => Promise<A>
} => {
  const writes = new AsyncLocalStorage<Write>()
  const guarded: TlsTrust["fetch"] = (input, init) => {
    const write = writes.getStore()
    if (write === undefined) return fetch(input, init)
    const method = (init?.method ?? "GET").toUpperCase()
    const url = String(input)
    const failed = write.failed
    if (failed !== undefined && failed.method === method && failed.url === url) return Promise.reject(failed.error)
    return fetch(input, init).catch((error: unknown) => {
      if (mayHaveBeenSent(error)) write.failed = { method, url, error }
      throw error
    })
  }
  const run = <A>(method: string, request: () => Promise<A>): Promise<A> => {
    const m = method.toUpperCase()
    return m === "GET" || m === "HEAD" ? request() : writes.run({ failed: undefined }, request)
  }
  return { fetch: guarded, run }
}
