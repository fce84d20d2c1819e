// The simulator of the critical-path bench (`criticalPath.ts`), in a process of its own, as Proxmox and k3s run on
// other machines than the tool: its TLS and SSH servers, image downloads with checksums and k3s simulation then do
// not take the event loop of the reconciler the bench times. Started with `child_process.fork`; the bench sends the
// scenario, this answers with the simulator's info, then answers the bench's calls (`SimCalls`) over Node IPC.
// It stops the simulator and exits on `stop`, on SIGINT or SIGTERM, and when the bench goes away (IPC disconnect),
// so it never outlives the bench.
import {
  type CriticalPath,
  type RequestLogEntry,
  type Scenario,
  type SimHandle,
  type SimInfo,
  type SimOperation,
  type SimStateSnapshot,
  startSimPromise
} from "@homelab/sim"

/** What the bench may ask the simulator, by method name (the `SimHandle` method of the same name). */
export interface SimCalls {
  readonly mark: () => number
  readonly criticalPath: (since: number) => CriticalPath
  readonly operations: (since: number) => ReadonlyArray<SimOperation>
  readonly requests: () => ReadonlyArray<RequestLogEntry>
  readonly state: () => SimStateSnapshot
  /** stop the simulator; the process exits after answering */
  readonly stop: () => void
}

/** bench → simulator: first `{ scenario }`, then calls */
export type ToSim =
  | { readonly scenario: Scenario }
  | { readonly id: number; readonly method: keyof SimCalls; readonly args: ReadonlyArray<unknown> }

/** simulator → bench: `{ ready }` or `{ failed }` once, then one answer per call */
export type FromSim =
  | { readonly ready: SimInfo }
  | { readonly failed: string }
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }

const send = (message: FromSim): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })

let sim: SimHandle | undefined
let exiting = false
/** Stop the simulator (its servers, its key directory) and exit; at most 10 s, then exit anyway. */
const shutdown = (code: number) => {
  if (exiting) return
  exiting = true
  setTimeout(() => process.exit(code), 10_000).unref()
  void (sim?.stop() ?? Promise.resolve()).catch(() => undefined).finally(() => process.exit(code))
}
process.on("disconnect", () => shutdown(0))
process.on("SIGINT", () => shutdown(130))
process.on("SIGTERM", () => shutdown(143))

const message = (e: unknown) => (e instanceof Error ? (e.stack ?? e.message) : String(e))

const call = async (s: SimHandle, method: keyof SimCalls, args: ReadonlyArray<unknown>): Promise<unknown> => {
  switch (method) {
    case "mark":
      return s.mark()
    case "criticalPath":
      return s.criticalPath(args[0] as number)
    case "operations":
      return s.operations(args[0] as number)
    case "requests":
      return s.requests()
    case "state":
      return s.state()
    case "stop":
      return s.stop()
  }
}

process.on("message", (m: ToSim) => {
  if ("scenario" in m) {
    startSimPromise(m.scenario).then(
      (started) => {
        sim = started
        // a stop that came while it started
        if (exiting) return void started.stop()
        return send({ ready: started.info })
      },
      (e: unknown) => send({ failed: message(e) }).then(() => shutdown(1))
    )
    return
  }
  const s = sim
  if (s === undefined) return void send({ id: m.id, ok: false, error: "the simulator has not started" })
  call(s, m.method, m.args).then(
    (value) =>
      send({ id: m.id, ok: true, value }).then(() => {
        if (m.method === "stop") shutdown(0)
      }),
    (e: unknown) => send({ id: m.id, ok: false, error: message(e) })
  )
})
