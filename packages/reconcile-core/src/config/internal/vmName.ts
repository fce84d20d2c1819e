/**
 * What a VM name must be: PVE's `name` is a `dns-name` (labels of letters, digits and `-`, dots between them) with no
 * length limit, but PVE's cloud-init makes the first label the guest's hostname (a DNS label: at most 63 characters),
 * and with k3s the name is the Node name (`--node-name`), which k3s lower-cases and kubelet also writes as the
 * `kubernetes.io/hostname` label value (at most 63 characters).
 */
import { dnsNamePattern } from "./formats.js"

export interface VmNameProblem {
  /** What a name must be, for the issue's `expected`. */
  readonly expected: string
  /** Added to the quoted name in the issue's `found`. */
  readonly detail?: string
  /** The corrected name, when there is one. */
  readonly lowerCase?: string
}

/** The longest DNS label (and host name label) RFC 1035 and RFC 1123 allow. */
export const maxLabelLength = 63
/** The longest DNS name. */
export const maxDnsNameLength = 253

/** Why `name` cannot be a VM name (`k3s`: homelab.yaml has a k3s section, so it is also a k3s Node name). */
export const vmNameProblem = (name: string, k3s: boolean): VmNameProblem | undefined => {
  if (!dnsNamePattern.test(name)) {
    return { expected: "a VM name that is a valid DNS name (letters, digits, -, dots between labels)" }
  }
  const longLabel = name.split(".").find((label) => label.length > maxLabelLength)
  if (longLabel !== undefined) {
    return {
      expected: `a VM name whose labels are at most ${maxLabelLength} characters (PVE's cloud-init makes the first label the VM's hostname, a DNS label)`,
      detail: name.includes(".") ? `a label of ${longLabel.length} characters` : `${name.length} characters`
    }
  }
  if (name.length > maxDnsNameLength) {
    return {
      expected: `a VM name of at most ${maxDnsNameLength} characters (a DNS name)`,
      detail: `${name.length} characters`
    }
  }
  if (!k3s) return undefined
  if (name.length > maxLabelLength) {
    return {
      expected: `a VM name of at most ${maxLabelLength} characters with k3s (the VM name is its k3s Node name, and kubelet labels the Node kubernetes.io/hostname=<name>, a label value of at most ${maxLabelLength} characters: the Node is never registered)`,
      detail: `${name.length} characters`
    }
  }
  if (name !== name.toLowerCase()) {
    return {
      expected:
        "a lower-case VM name with k3s (the VM name is its k3s Node name, which k3s lower-cases as Kubernetes requires, RFC 1123: homelab would wait for a Node named as written)",
      lowerCase: name.toLowerCase()
    }
  }
  return undefined
}
