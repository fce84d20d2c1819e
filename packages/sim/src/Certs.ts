import { createHash, generateKeyPairSync, X509Certificate } from "node:crypto"
import { generate } from "selfsigned"
import ssh2 from "ssh2"

const { utils } = ssh2

/** The cluster CA (pve-root-ca.pem) and its key. */
export interface ClusterCa {
  readonly cert: string
  readonly key: string
}

/** A node's API certificate (pve-ssl.pem) with its key and SHA-256 fingerprint as PVE shows it. */
export interface NodeCert {
  readonly cert: string
  readonly key: string
  readonly fingerprint: string
}

/** `AA:BB:...` uppercase SHA-256 fingerprint of a PEM certificate. */
export const certFingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256.toUpperCase()

const sharedLeafKey = (() => {
  let cached: { privateKey: string; publicKey: string } | undefined
  return () => {
    cached ??= generateKeyPairSync("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs8", format: "pem" }
    })
    return cached
  }
})()

/** Generate a per-cluster CA with PVE's subject (`CN=Proxmox Virtual Environment, OU=<uuid>, O=PVE Cluster Manager CA`). */
export const generateClusterCa = async (ou: string): Promise<ClusterCa> => {
  const notBeforeDate = new Date(Date.now() - 24 * 3600 * 1000)
  const r = await generate(
    [
      { name: "commonName", value: "Proxmox Virtual Environment" },
      { name: "OU", value: ou },
      { name: "organizationName", value: "PVE Cluster Manager CA" }
    ],
    {
      keySize: 2048,
      algorithm: "sha256",
      notBeforeDate,
      notAfterDate: new Date(notBeforeDate.getTime() + 10 * 365 * 24 * 3600 * 1000),
      extensions: [
        { name: "basicConstraints", cA: true, critical: true },
        { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true }
      ]
    }
  )
  return { cert: r.cert, key: r.private }
}

/**
 * Generate a node's leaf certificate signed by the CA. All leaves share one key pair (generation dominates
 * start-up); each node still gets its own certificate and fingerprint.
 */
export const generateNodeCert = async (
  ca: ClusterCa,
  nodeName: string,
  addresses: ReadonlyArray<string>
): Promise<NodeCert> => {
  const keyPair = sharedLeafKey()
  const notBeforeDate = new Date(Date.now() - 24 * 3600 * 1000)
  const ips = [...new Set(["127.0.0.1", "::1", ...addresses])]
  const r = await generate(
    [
      { name: "OU", value: "PVE Cluster Node" },
      { name: "organizationName", value: "Proxmox Virtual Environment" },
      { name: "commonName", value: `${nodeName}.local` }
    ],
    {
      algorithm: "sha256",
      keyPair,
      ca: { key: ca.key, cert: ca.cert },
      notBeforeDate,
      notAfterDate: new Date(notBeforeDate.getTime() + 2 * 365 * 24 * 3600 * 1000),
      extensions: [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        {
          name: "subjectAltName",
          altNames: [
            ...ips.map((ip) => ({ type: 7 as const, ip })),
            { type: 2 as const, value: "localhost" },
            { type: 2 as const, value: nodeName },
            { type: 2 as const, value: `${nodeName}.local` }
          ]
        }
      ]
    }
  )
  return { cert: r.cert, key: keyPair.privateKey, fingerprint: certFingerprint(r.cert) }
}

/** An ed25519 SSH key pair in OpenSSH format. */
export interface SshKeyPair {
  readonly privateKey: string
  readonly publicKey: string
}

export const generateSshKey = (comment: string): SshKeyPair => {
  // ssh2's generator (1.17) strips every leading zero byte of an ed25519 public key, so about 1 key in 250 comes
  // out malformed ("Malformed OpenSSH private key" in ssh2, "error in libcrypto" in ssh-keygen): retry until the
  // pair round-trips
  for (;;) {
    const k = utils.generateKeyPairSync("ed25519", { comment })
    if (!(utils.parseKey(k.private) instanceof Error) && !(utils.parseKey(k.public) instanceof Error))
      return { privateKey: k.private, publicKey: k.public }
  }
}

/** OpenSSH-style `SHA256:...` fingerprint of a public key line. */
export const sshFingerprint = (publicKey: string): string => {
  const parsed = utils.parseKey(publicKey)
  if (parsed instanceof Error) throw parsed
  const k = Array.isArray(parsed) ? parsed[0] : parsed
  const blob = k.getPublicSSH()
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`
}
