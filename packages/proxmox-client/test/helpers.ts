import { execFileSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as https from "node:https"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ProxmoxClientConfigShape } from "../src/index.js"

export interface TestCerts {
  readonly caPem: string
  readonly leafKey: string
  readonly leafPem: string
  readonly selfKey: string
  readonly selfPem: string
  readonly leafFingerprint: string
}

let cached: TestCerts | undefined

/** A PVE-like CA + leaf (SAN 127.0.0.1, localhost, pve1) and a self-signed leaf, made with the openssl binary. */
export const testCerts = (): TestCerts => {
  if (cached !== undefined) return cached
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pvc-certs-"))
  const run = (args: Array<string>) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] })
  try {
    fs.writeFileSync(
      path.join(dir, "ext.cnf"),
      "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:pve1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    run([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      "/CN=Proxmox Virtual Environment/O=PVE Cluster Manager CA"
    ])
    run([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "leaf.key",
      "-out",
      "leaf.csr",
      "-subj",
      "/OU=PVE Cluster Node/O=Proxmox Virtual Environment/CN=pve1"
    ])
    run([
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "leaf.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf"
    ])
    run([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "self.key",
      "-out",
      "self.pem",
      "-days",
      "2",
      "-subj",
      "/CN=pve1",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost"
    ])
    const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8")
    const leafPem = read("leaf.pem")
    cached = {
      caPem: read("ca.pem"),
      leafKey: read("leaf.key"),
      leafPem,
      selfKey: read("self.key"),
      selfPem: read("self.pem"),
      leafFingerprint: new crypto.X509Certificate(leafPem).fingerprint256
    }
    return cached
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

export interface FakeReply {
  readonly status: number
  readonly statusText?: string
  readonly body?: unknown
  /** default application/json;charset=UTF-8; `null` = no content type */
  readonly contentType?: string | null
}

export interface FakePve {
  readonly port: number
  readonly requests: Array<{
    method: string
    url: string
    headers: Record<string, unknown>
    body: string
    remotePort: number
  }>
  readonly connections: () => number
}

/**
 * A tiny HTTPS server answering like PVE (exact content type, reason phrase = message). `mode` picks the
 * certificate: `leaf` (CA-signed leaf only → UNABLE_TO_VERIFY_LEAF_SIGNATURE), `chain` (leaf + CA →
 * SELF_SIGNED_CERT_IN_CHAIN), `self` (self-signed → DEPTH_ZERO_SELF_SIGNED_CERT).
 */
export const fakePve = (
  mode: "leaf" | "chain" | "self",
  handler: (method: string, url: string, body: string) => FakeReply | "hang"
): Effect.Effect<FakePve, never, import("effect").Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ server: https.Server; state: FakePve }>((resume) => {
      const certs = testCerts()
      const cert = mode === "self" ? certs.selfPem : mode === "chain" ? certs.leafPem + certs.caPem : certs.leafPem
      const key = mode === "self" ? certs.selfKey : certs.leafKey
      const requests: FakePve["requests"] = []
      let connections = 0
      const sockets = new Set<net.Socket>()
      const server = https.createServer({ cert, key }, (req, res) => {
        let body = ""
        req.on("data", (c: Buffer) => {
          body += c.toString("utf8")
        })
        req.on("end", () => {
          requests.push({
            method: req.method ?? "",
            url: req.url ?? "",
            headers: req.headers,
            body,
            remotePort: req.socket.remotePort ?? 0
          })
          const reply = handler(req.method ?? "", req.url ?? "", body)
          if (reply === "hang") return
          const headers: Record<string, string> = {}
          if (reply.contentType !== null)
            headers["Content-Type"] = reply.contentType ?? "application/json;charset=UTF-8"
          res.writeHead(reply.status, reply.statusText ?? "OK", headers)
          res.end(reply.body === undefined ? "" : JSON.stringify(reply.body))
        })
      })
      server.on("secureConnection", () => {
        connections++
      })
      server.on("connection", (socket: net.Socket) => {
        sockets.add(socket)
        socket.on("close", () => sockets.delete(socket))
      })
      ;(server as https.Server & { sockets?: Set<net.Socket> }).sockets = sockets
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as net.AddressInfo).port
        resume(Effect.succeed({ server, state: { port, requests, connections: () => connections } }))
      })
    }),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        for (const s of (server as https.Server & { sockets?: Set<net.Socket> }).sockets ?? []) s.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ state }) => state))

export const TOKEN_SECRET = "0b6c3e2a-1111-4222-8333-944455556666"

export const restConfig = (
  port: number,
  overrides: Partial<ProxmoxClientConfigShape> = {}
): ProxmoxClientConfigShape => ({
  nodes: [{ name: "pve1", apiUrl: `https://127.0.0.1:${port}` }],
  auth: { _tag: "Token", tokenId: "root@pam!reconciler", secret: Redacted.make(TOKEN_SECRET) },
  // hang guards, not timing expectations (tests of a timeout set their own)
  timeouts: { request: 30_000, auth: 30_000 },
  ...overrides
})
