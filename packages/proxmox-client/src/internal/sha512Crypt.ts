import { createHash, randomBytes } from "node:crypto"

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

const sha512 = (...parts: ReadonlyArray<Buffer>): Buffer => {
  const h = createHash("sha512")
  for (const p of parts) h.update(p)
  return h.digest()
}

/** `length` bytes of `block` repeated (the P and S sequences of the algorithm). */
const repeatTo = (block: Buffer, length: number): Buffer => {
  const out = Buffer.alloc(length)
  for (let i = 0; i < length; i++) out[i] = block[i % block.length] as number
  return out
}

// Byte triples of the final digest, in the order glibc's crypt-sha512 encodes them.
const ORDER: ReadonlyArray<readonly [number, number, number]> = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41]
]

const b64From24 = (b2: number, b1: number, b0: number, n: number): string => {
  let w = (b2 << 16) | (b1 << 8) | b0
  let out = ""
  for (let i = 0; i < n; i++) {
    out += ITOA64[w & 0x3f]
    w >>= 6
  }
  return out
}

/** A random crypt salt of 16 characters from `./0-9A-Za-z`. */
export const cryptSalt = (): string => [...randomBytes(16)].map((b) => ITOA64[b & 0x3f]).join("")

/**
 * SHA-512-crypt (`$6$salt$hash`, 5000 rounds), as glibc's `crypt(3)` and `openssl passwd -6` compute it. PVE stores
 * a `cipassword` that already is such a hash as it is, so the SSH transport can send the hash instead of the password.
 */
export const sha512Crypt = (password: string, salt: string = cryptSalt()): string => {
  const s = Buffer.from(salt.slice(0, 16), "utf8")
  const p = Buffer.from(password, "utf8")
  const b = sha512(p, s, p)
  const a = createHash("sha512").update(p).update(s)
  let n = p.length
  for (; n > 64; n -= 64) a.update(b)
  a.update(b.subarray(0, n))
  for (let i = p.length; i > 0; i >>= 1) a.update(i & 1 ? b : p)
  let c = a.digest()
  const dp = sha512(...Array.from({ length: p.length }, () => p))
  const pSeq = repeatTo(dp, p.length)
  const ds = sha512(...Array.from({ length: 16 + (c[0] as number) }, () => s))
  const sSeq = repeatTo(ds, s.length)
  for (let r = 0; r < 5000; r++) {
    const h = createHash("sha512")
    h.update(r & 1 ? pSeq : c)
    if (r % 3) h.update(sSeq)
    if (r % 7) h.update(pSeq)
    h.update(r & 1 ? c : pSeq)
    c = h.digest()
  }
  const digest = c
  let encoded = ""
  for (const [x, y, z] of ORDER) encoded += b64From24(digest[x] as number, digest[y] as number, digest[z] as number, 4)
  encoded += b64From24(0, 0, digest[63] as number, 2)
  return `$6$${s.toString("utf8")}$${encoded}`
}

/** PVE keeps these as they are (it only hashes cleartext). */
export const isCryptHash = (value: string): boolean => /^\$(1|5|6|2a)\$/.test(value)
