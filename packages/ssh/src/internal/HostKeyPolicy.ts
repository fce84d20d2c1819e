import { fingerprintOf, keyTypeOf } from "../fingerprintOf.js"
import * as KnownHosts from "../KnownHosts.js"
import { HostKeyMismatch, HostKeyRevoked, HostKeyUnknown } from "../SshError.js"
import type { HostKeyMode } from "../SshOptions.js"

/** The decision taken in ssh2's (synchronous) host verifier, acted upon once the handshake is over. */
export type HostKeyDecision =
  | { readonly _tag: "Accept" }
  | { readonly _tag: "Append"; readonly keyBlob: Uint8Array; readonly keyType: string; readonly fingerprint: string }
  | { readonly _tag: "Reject"; readonly reason: HostKeyMismatch | HostKeyRevoked | HostKeyUnknown }

export const forgetHint = (host: string, port: number, path: string): string =>
  `If the host was rebuilt, remove the old key with \`ssh-keygen -R '${KnownHosts.hostToken(host, port)}' -f ${path}\`` +
  ` or SshClient.forgetHostKey("${host}"${port === 22 ? "" : `, ${port}`}), then connect again.`

export const decide = (
  mode: HostKeyMode,
  entries: ReadonlyArray<KnownHosts.Entry>,
  host: string,
  port: number,
  path: string,
  keyBlob: Uint8Array
): HostKeyDecision => {
  const verdict = KnownHosts.check(entries, host, port, keyBlob)
  const keyType = keyTypeOf(keyBlob)
  const fingerprint = fingerprintOf(keyBlob)
  const token = KnownHosts.hostToken(host, port)
  // A revoked key is refused whatever the mode (OpenSSH refuses it unless StrictHostKeyChecking=no, and then only
  // carries on without password authentication; this library has no safer way to carry on, so it never does).
  if (verdict._tag === "Revoked") {
    return {
      _tag: "Reject",
      reason: new HostKeyRevoked({
        host: token,
        keyType,
        fingerprint,
        knownHostsPath: path,
        line: verdict.entry.lineNumber,
        hint: `Do not use this host with that key: give it new host keys, or if the revocation was a mistake, remove the @revoked line ${verdict.entry.lineNumber} from ${path}.`
      })
    }
  }
  if (mode === "off") return { _tag: "Accept" }
  switch (verdict._tag) {
    case "Known":
      return { _tag: "Accept" }
    case "Mismatch":
      return {
        _tag: "Reject",
        reason: new HostKeyMismatch({
          host: token,
          keyType,
          expected: KnownHosts.fingerprint(verdict.expected),
          actual: fingerprint,
          knownHostsPath: path,
          hint: forgetHint(host, port, path)
        })
      }
    case "Unknown":
      if (mode === "accept-new") return { _tag: "Append", keyBlob, keyType, fingerprint }
      // A host known only through a `@cert-authority` line: ssh2 cannot present host certificates, so say why.
      if (entries.some((e) => e.marker === "cert-authority" && KnownHosts.matchesHost(e, host, port))) {
        return {
          _tag: "Reject",
          reason: new HostKeyUnknown({
            host: token,
            keyType,
            fingerprint,
            knownHostsPath: path,
            hint:
              "known_hosts trusts a certificate authority for this host, but host certificates are not supported " +
              `(ssh2); verify the fingerprint and add the plain key (e.g. \`ssh-keyscan -p ${port} ${host} >> ${path}\`).`
          })
        }
      }
      return {
        _tag: "Reject",
        reason: new HostKeyUnknown({
          host: token,
          keyType,
          fingerprint,
          knownHostsPath: path,
          hint:
            `Verify the fingerprint out of band and add the key (e.g. \`ssh-keyscan -p ${port} ${host} >> ${path}\`),` +
            ` or use knownHosts mode "accept-new".`
        })
      }
  }
}

const ALGORITHMS_BY_KEY_TYPE: Record<string, ReadonlyArray<string>> = {
  "ssh-ed25519": ["ssh-ed25519"],
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"]
}

/**
 * Like OpenSSH, ask the server for a host key of a type we already know for it, so that a host with several keys is
 * not reported as changed just because it offered another type first.
 */
export const serverHostKeyAlgorithms = (knownTypes: ReadonlyArray<string>): Array<string> | undefined => {
  const algorithms = knownTypes.flatMap((t) => ALGORITHMS_BY_KEY_TYPE[t] ?? [])
  return algorithms.length === 0 ? undefined : [...new Set(algorithms)]
}
