import { createHash } from "node:crypto"
import http from "node:http"
import { closeHttp, listenHttp } from "../internal/httpLifecycle.js"
import type { K3sReleases } from "./K3sReleases.js"

/** The text served as `https://get.k3s.io`. Guests of the simulator recognise and interpret it natively. */
export const INSTALL_SCRIPT = `#!/bin/sh
set -e
set -o noglob

# Usage:
#   curl -sfL https://get.k3s.io | ENV_VAR=... sh -
#       or
#   ENV_VAR=... ./install.sh
#
# Stand-in for the k3s install script (https://get.k3s.io) served by @homelab/sim. Guests of the simulator
# interpret it natively (see the sim README, "k3s inside guests"). Honoured environment variables:
#   INSTALL_K3S_VERSION, INSTALL_K3S_CHANNEL, INSTALL_K3S_EXEC, INSTALL_K3S_NAME, INSTALL_K3S_SKIP_DOWNLOAD,
#   INSTALL_K3S_CHANNEL_URL, GITHUB_URL, INSTALL_K3S_SKIP_START, INSTALL_K3S_SKIP_ENABLE, INSTALL_K3S_FORCE_RESTART,
#   INSTALL_K3S_BIN_DIR (ignored),
#   K3S_URL, K3S_TOKEN, K3S_TOKEN_FILE, K3S_NODE_NAME and every other K3S_* / CONTAINERD_* variable.

GITHUB_URL=https://github.com/k3s-io/k3s/releases
echo '[ERROR]  This k3s install script stand-in only runs inside @homelab/sim guests' >&2
exit 1
`

/** Marker test: does a script look like the k3s install script (the stand-in or a real copy for airgap)? */
export const isInstallScript = (text: string): boolean => /INSTALL_K3S_/.test(text) && /k3s/.test(text)

export const commitOf = (version: string): string => createHash("sha256").update(version).digest("hex").slice(0, 8)

/** The simulated release binary: a small text file naming its version. */
export const k3sBinary = (version: string): string =>
  `#!/bin/false\n# simulated k3s binary\n# k3s version ${version} (${commitOf(version)})\n`

/** Version of a binary written by the simulator (or `undefined` for an arbitrary uploaded file). */
export const binaryVersion = (content: string): string | undefined =>
  /k3s version (v\d+\.\d+\.\d+\+k3s\d+)/.exec(content)?.[1]

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex")

/**
 * Plain-HTTP stand-in for `https://get.k3s.io`, `https://github.com/k3s-io/k3s/releases` (only the releases the
 * catalogue has) and the channel server `https://update.k3s.io/v1-release/channels` on loopback. The guests' simulated
 * `curl` maps those URLs here.
 */
export class K3sOrigin {
  private readonly server: http.Server
  port = 0

  constructor(releases: K3sReleases) {
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost")
      const send = (status: number, body: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, {
          "Content-Type": "text/plain",
          "Content-Length": String(Buffer.byteLength(body)),
          ...headers
        })
        res.end(req.method === "HEAD" ? undefined : body)
      }
      if (url.pathname === "/" || url.pathname === "/install.sh") return send(200, INSTALL_SCRIPT)
      const rel = /^\/k3s-io\/k3s\/releases\/download\/([^/]+)\/([^/]+)$/.exec(url.pathname)
      if (rel !== null) {
        const version = decodeURIComponent(rel[1] as string)
        const file = rel[2] as string
        if (!releases.has(version)) return send(404, "Not Found")
        if (file === "k3s") return send(200, k3sBinary(version))
        if (file === "sha256sum-amd64.txt") return send(200, `${sha256(k3sBinary(version))}  k3s\n`)
      }
      const tag = /^\/k3s-io\/k3s\/releases\/tag\/([^/]+)$/.exec(url.pathname)
      if (tag !== null)
        return releases.has(decodeURIComponent(tag[1] as string))
          ? send(200, `<html><title>Release ${decodeURIComponent(tag[1] as string)}</title></html>\n`)
          : send(404, "Not Found")
      if (url.pathname === "/v1-release/channels" || url.pathname === "/v1-release/channels/") {
        const self = "https://update.k3s.io/v1-release/channels"
        return send(
          200,
          JSON.stringify({
            id: "",
            type: "collection",
            links: { self },
            actions: {},
            resourceType: "channels",
            data: releases.channelList().map((c) => ({
              id: c.name,
              type: "channel",
              links: { self: `${self}/${c.name}` },
              name: c.name,
              latest: c.latest
            }))
          }),
          { "Content-Type": "application/json" }
        )
      }
      const channel = /^\/v1-release\/channels\/([^/]+)$/.exec(url.pathname)
      if (channel !== null) {
        const latest = releases.channel(decodeURIComponent(channel[1] as string))
        if (latest === undefined) return send(404, "404 page not found\n")
        return send(302, "", { Location: `https://github.com/k3s-io/k3s/releases/tag/${latest}` })
      }
      send(404, "Not Found")
    })
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Map a guest URL to the origin (`https://get.k3s.io…`, GitHub releases, the channel server), or `undefined`. */
  map(url: string): string | undefined {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      return undefined
    }
    if (u.hostname === "get.k3s.io") return `${this.url}/`
    if (u.hostname === "github.com" && u.pathname.startsWith("/k3s-io/k3s/releases/")) return `${this.url}${u.pathname}`
    if (u.hostname === "update.k3s.io" && u.pathname.startsWith("/v1-release/channels"))
      return `${this.url}${u.pathname}`
    return undefined
  }

  async listen(host: string, port: number): Promise<number> {
    this.port = await listenHttp(this.server, host, port)
    return this.port
  }

  close(): Promise<void> {
    return closeHttp(this.server)
  }
}

/** GET a loopback URL (redirects are not followed); resolves status, body and the `Location` header. */
export const httpGet = (url: string): Promise<{ status: number; body: Buffer; location?: string | undefined }> =>
  new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), location: res.headers.location })
      )
      res.on("error", reject)
    })
    req.on("error", reject)
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")))
  })
