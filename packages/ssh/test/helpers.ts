import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { SshClient, type SshEvent, type SshOptions } from "../src/index.js"
import { generateKeyPair, TestSshServer, type TestSshServerOptions } from "../src/testing/index.js"

export const userKey = generateKeyPair("ed25519")
export const PASSWORD = "correct horse battery staple"

/** A temporary directory, removed with the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "homelab-ssh-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** A test server accepting user "alice" with `userKey` and user "bob" with `PASSWORD`. */
export const testServer = (options?: Partial<TestSshServerOptions>) =>
  TestSshServer.scoped({
    users: [
      { name: "alice", publicKeys: [userKey.public] },
      { name: "bob", password: PASSWORD }
    ],
    ...options
  })

/** Client options trusting nothing but `known_hosts` in `dir`, authenticating with `userKey`. */
export const clientOptions = (
  dir: string,
  overrides?: Partial<SshOptions> & { readonly events?: Array<SshEvent> }
): SshOptions => ({
  auth: { privateKey: Redacted.make(userKey.private) },
  knownHosts: { mode: "strict", path: path.join(dir, "known_hosts") },
  connectTimeout: "30 seconds",
  onEvent: (event) => overrides?.events?.push(event),
  ...overrides
})

/** A client layer built in the current scope (closed, with its connections, when the test ends). */
export const client = (options: SshOptions) =>
  Layer.build(SshClient.layerWith(options)).pipe(Effect.map((context) => Context.get(context, SshClient)))

export const trust = (dir: string, server: TestSshServer) =>
  fs.appendFileSync(path.join(dir, "known_hosts"), `${server.knownHostsLine()}\n`)

/** A port that nothing listens on. */
export const closedPort = Effect.promise(
  () =>
    new Promise<number>((resolve) => {
      const server = net.createServer()
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as net.AddressInfo
        server.close(() => resolve(port))
      })
    })
)

/** A TCP server that accepts connections and never says anything (no SSH banner). */
export const silentServer = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ port: number; server: net.Server; sockets: Set<net.Socket> }>((resolve) => {
        const sockets = new Set<net.Socket>()
        const server = net.createServer((socket) => {
          sockets.add(socket)
          socket.on("error", () => {})
        })
        server.listen(0, "127.0.0.1", () =>
          resolve({ port: (server.address() as net.AddressInfo).port, server, sockets })
        )
      })
  ),
  ({ server, sockets }) =>
    Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy()
          server.close(() => resolve())
        })
    )
)
