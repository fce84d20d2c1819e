import { createHash } from "node:crypto"

/**
 * The OpenSSH SHA256 fingerprint of a public key blob (the binary key, as in the base64 field of `known_hosts` or
 * `authorized_keys`): `SHA256:` followed by the unpadded base64 of the SHA-256 digest, exactly as `ssh-keygen -l`
 * and `ssh` print it.
 *
 * @since 0.1.0
 * @category utilities
 */
export const fingerprintOf = (keyBlob: Uint8Array): string =>
  `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`

/**
 * The key type named inside a public key blob (its first SSH string, e.g. `ssh-ed25519`, `ssh-rsa`).
 *
 * @since 0.1.0
 * @category utilities
 */
export const keyTypeOf = (keyBlob: Uint8Array): string => {
  if (keyBlob.length < 4) return "unknown"
  const view = new DataView(keyBlob.buffer, keyBlob.byteOffset, keyBlob.byteLength)
  const length = view.getUint32(0)
  if (length > keyBlob.length - 4 || length > 64) return "unknown"
  return Buffer.from(keyBlob.subarray(4, 4 + length)).toString("latin1")
}
