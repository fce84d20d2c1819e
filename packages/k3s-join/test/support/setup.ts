import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SshClient, type SshEvent } from "@homelab/ssh"
import { generateKeyPair, type TestExecHandler, TestSshServer } from "@homelab/ssh/testing"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { K3sJoin } from "../../src/K3sJoin.js"
import type { K3sHost, K3sJoinEvent, K3sJoinOptions, K3sServer } from "../../src/K3sJoinOptions.js"

export const userKey = generateKeyPair("ed25519")
export const USER = "ubuntu"

/** A temporary directory, removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "k3s-join-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** An SSH server on 127.0.0.1 answering with `handler`, stopped with the scope. */
export const sshHost = (handler: TestExecHandler) =>
  TestSshServer.scoped({ users: [{ name: USER, publicKeys: [userKey.public] }], exec: handler })

/**
 * The events of a `K3sJoin` (give it `onEvent`), and `eventWhere`: waits until an event matching `matches` was emitted
 * (at once when one already was), so that a test waits on the join's progress as an event, not for a while.
 */
export const eventLog = () => {
  const events: Array<K3sJoinEvent> = []
  const waiters = new Set<{ readonly matches: (event: K3sJoinEvent) => boolean; readonly resume: () => void }>()
  const onEvent = (event: K3sJoinEvent) => {
    events.push(event)
    for (const waiter of waiters) {
      if (!waiter.matches(event)) continue
      waiters.delete(waiter)
      waiter.resume()
    }
  }
  const eventWhere = (matches: (event: K3sJoinEvent) => boolean): Effect.Effect<void> =>
    Effect.callback<void>((resume) => {
      if (events.some(matches)) return resume(Effect.void)
      const waiter = { matches, resume: () => resume(Effect.void) }
      waiters.add(waiter)
      return Effect.sync(() => waiters.delete(waiter))
    })
  return { events, onEvent, eventWhere }
}

export interface Harness {
  readonly k3s: K3sJoin["Service"]
  readonly dir: string
  readonly events: Array<K3sJoinEvent>
  readonly sshEvents: Array<SshEvent>
  /** Waits until an event matching `matches` was emitted (see `eventLog`). */
  readonly eventWhere: (matches: (event: K3sJoinEvent) => boolean) => Effect.Effect<void>
}

/** `K3sJoin` over a real `SshClient` (accept-new known_hosts in a temp dir), fast polling. */
export const harness = (options?: K3sJoinOptions) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const { events, onEvent, eventWhere } = eventLog()
    const sshEvents: Array<SshEvent> = []
    const layer = K3sJoin.layerWith({
      timeouts: { pollInterval: "10 millis", ready: "30 seconds", command: "30 seconds" },
      onEvent,
      ...options
    }).pipe(
      Layer.provide(
        SshClient.layerWith({
          auth: { privateKey: Redacted.make(userKey.private) },
          knownHosts: { mode: "accept-new", path: path.join(dir, "known_hosts") },
          connectTimeout: "30 seconds",
          onEvent: (event) => sshEvents.push(event)
        })
      )
    )
    const context = yield* Layer.build(layer)
    return { k3s: Context.get(context, K3sJoin), dir, events, sshEvents, eventWhere } satisfies Harness
  })

export const serverOf = (server: TestSshServer, apiAddress = "10.0.10.11"): K3sServer => ({
  host: server.host,
  port: server.port,
  user: USER,
  apiAddress
})

export const hostOf = (server: TestSshServer, ip: string, extra?: Partial<K3sHost>): K3sHost => ({
  host: server.host,
  port: server.port,
  user: USER,
  ip,
  ...extra
})
