import { createHash } from "node:crypto"
import http from "node:http"
import { closeHttp, listenHttp } from "./internal/httpLifecycle.js"

export interface OriginFile {
  readonly path: string
  readonly size: number
  /** declared sha256; when absent the real digest of the synthetic bytes */
  readonly sha256: string | undefined
}

const BLOCK = 64 * 1024

/** Deterministic synthetic bytes of a file: a 64 KiB block derived from the path, each block salted by its index. */
const blockFor = (path: string, index: number): Buffer => {
  const out = Buffer.alloc(BLOCK)
  let seed = createHash("sha256").update(`${path}#${index}`).digest()
  for (let off = 0; off < BLOCK; off += 32) {
    seed.copy(out, off)
    if (off % 4096 === 0) seed = createHash("sha256").update(seed).digest()
  }
  return out
}

/** Stream the synthetic content of a file. */
export const syntheticChunks = function* (path: string, size: number): Generator<Buffer> {
  // QCOW2 magic at the start so image files look like images
  let sent = 0
  let index = 0
  while (sent < size) {
    let b = blockFor(path, index++)
    if (sent === 0 && /\.qcow2$/.test(path)) b = Buffer.concat([Buffer.from("QFI\xfb", "latin1"), b.subarray(4)])
    const n = Math.min(b.length, size - sent)
    yield n === b.length ? b : b.subarray(0, n)
    sent += n
  }
}

export const syntheticSha256 = (path: string, size: number): string => {
  const h = createHash("sha256")
  for (const c of syntheticChunks(path, size)) h.update(c)
  return h.digest("hex")
}

/** A plain-HTTP file server on loopback standing in for cloud-images.ubuntu.com. */
export class ImageOrigin {
  private readonly server: http.Server
  private readonly files = new Map<string, OriginFile>()
  private readonly digests = new Map<string, string>()
  port = 0
  host = "127.0.0.1"

  constructor(files: ReadonlyArray<OriginFile>) {
    for (const f of files) this.files.set(f.path.startsWith("/") ? f.path : `/${f.path}`, f)
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost")
      if (url.pathname.endsWith("/SHA256SUMS")) {
        const dir = url.pathname.slice(0, -"SHA256SUMS".length)
        const lines = [...this.files.values()]
          .filter((f) => f.path.startsWith(dir))
          .map((f) => `${this.sha256Of(f)} *${f.path.slice(dir.length)}`)
        res.writeHead(200, { "Content-Type": "text/plain" })
        res.end(`${lines.join("\n")}\n`)
        return
      }
      const f = this.files.get(url.pathname)
      if (f === undefined) {
        res.writeHead(404, "Not Found", { "Content-Type": "text/plain" })
        res.end("not found\n")
        return
      }
      res.writeHead(200, { "Content-Type": "application/octet-stream", "Content-Length": String(f.size) })
      if (req.method === "HEAD") {
        res.end()
        return
      }
      const it = syntheticChunks(f.path, f.size)
      const pump = () => {
        for (;;) {
          const n = it.next()
          if (n.done) {
            res.end()
            return
          }
          if (!res.write(n.value)) {
            res.once("drain", pump)
            return
          }
        }
      }
      pump()
    })
  }

  /** Declared digest or the real one of the synthetic bytes. */
  sha256Of(f: OriginFile): string {
    if (f.sha256 !== undefined) return f.sha256
    let d = this.digests.get(f.path)
    if (d === undefined) {
      d = syntheticSha256(f.path, f.size)
      this.digests.set(f.path, d)
    }
    return d
  }

  url(path: string): string {
    return `http://${this.host}:${this.port}${path.startsWith("/") ? path : `/${path}`}`
  }

  list(): Array<{ path: string; url: string; size: number; sha256: string }> {
    return [...this.files.values()].map((f) => ({
      path: f.path,
      url: this.url(f.path),
      size: f.size,
      sha256: this.sha256Of(f)
    }))
  }

  async listen(host: string, port: number): Promise<number> {
    this.host = host
    this.port = await listenHttp(this.server, host, port)
    return this.port
  }

  close(): Promise<void> {
    return closeHttp(this.server)
  }
}

/** Fetch a URL over plain HTTP on loopback (the sim never reaches beyond 127.0.0.0/8). */
export const loopbackDownload = (url: string, onChunk: (b: Buffer) => void): Promise<void> =>
  new Promise((resolve, reject) => {
    let u: URL
    try {
      u = new URL(url)
    } catch {
      reject(new Error(`invalid URL '${url}'`))
      return
    }
    if (!/^127\.|^localhost$/.test(u.hostname) || u.protocol !== "http:") {
      reject(new Error(`unable to resolve host address '${u.hostname}'`))
      return
    }
    const req = http.get(u, (res) => {
      if ((res.statusCode ?? 0) >= 400) {
        res.resume()
        reject(new Error(`ERROR ${res.statusCode}: ${res.statusMessage ?? ""}`))
        return
      }
      res.on("data", onChunk)
      res.on("end", () => resolve())
      res.on("error", reject)
    })
    req.on("error", (e) => reject(e))
  })
