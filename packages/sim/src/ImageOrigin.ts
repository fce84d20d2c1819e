import { createCipheriv, createHash } from "node:crypto"
import http from "node:http"
import { closeHttp, listenHttp } from "./internal/httpLifecycle.js"

export interface OriginFile {
  readonly path: string
  readonly size: number
  /** declared sha256; when absent the real digest of the synthetic bytes */
  readonly sha256: string | undefined
}

const BLOCK = 1024 * 1024

/**
 * Stream the synthetic content of a file: deterministic bytes derived from the path. One 1 MiB block of an AES-128-CTR
 * keystream keyed by the path's SHA-256, each copy stamped with its index: cheap to make, so a download costs the
 * simulator little real time.
 */
export const syntheticChunks = function* (path: string, size: number): Generator<Buffer> {
  const key = createHash("sha256").update(path).digest()
  const base = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32)).update(Buffer.alloc(BLOCK))
  // QCOW2 magic at the start so image files look like images
  if (/\.qcow2$/.test(path)) base.write("QFI\xfb", 0, "latin1")
  let sent = 0
  for (let index = 0; sent < size; index++) {
    const n = Math.min(BLOCK, size - sent)
    const b = Buffer.allocUnsafe(n)
    base.copy(b, 0, 0, n)
    if (index > 0 && n >= 8) b.writeUInt32BE(index, 4)
    yield b
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
      res.writeHead(200, {
        "Content-Type": "application/octet-stream",
        "Content-Length": String(f.size),
        // what the bytes hash to (not the declared sha256, which may differ on purpose): spares the simulated PVE
        // hashing them again; a real origin does not send this
        [STATED_SHA256]: this.contentSha256(f)
      })
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
    return f.sha256 ?? this.contentSha256(f)
  }

  /** The real SHA-256 of the synthetic bytes (computed once per file). */
  private contentSha256(f: OriginFile): string {
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

/** The header in which the image origin states the SHA-256 of what it sends. */
const STATED_SHA256 = "x-sim-content-sha256"

/**
 * Fetch a URL over plain HTTP on loopback (the sim never reaches beyond 127.0.0.0/8); resolves with the SHA-256 the
 * server stated for the bytes (the image origin does).
 */
export const loopbackDownload = (
  url: string,
  onChunk: (b: Buffer, stated: { readonly sha256?: string | undefined }) => void
): Promise<{ readonly sha256?: string | undefined }> =>
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
      const header = res.headers[STATED_SHA256]
      const stated = { sha256: typeof header === "string" && /^[0-9a-f]{64}$/.test(header) ? header : undefined }
      res.on("data", (b: Buffer) => onChunk(b, stated))
      res.on("end", () => resolve(stated))
      res.on("error", reject)
    })
    req.on("error", (e) => reject(e))
  })
