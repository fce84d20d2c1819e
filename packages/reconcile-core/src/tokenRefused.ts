import type { K3sJoinError } from "@homelab/k3s-join"

/**
 * What to do when k3s refused the token a VM joined with (`BadToken`, `CaHashMismatch`), or k3s-join refused its form
 * (`TokenInvalid`: a short password, no CA hash): the token is homelab.yaml's `k3s.token` when it is set, and that is
 * what to change; otherwise homelab read it from `server` itself, so the VM and that server are to be looked at.
 * `undefined` for any other failure (and for `TokenInvalid` of a token read from the server): the caller's hint stands.
 */
export const tokenRefusedHint = (
  error: K3sJoinError,
  context: {
    /** `k3s.token` is set in homelab.yaml. */
    readonly configured: boolean
    /** The server the VM joins through (its address). */
    readonly server: string
    /** Where to read the VM's side: `journalctl -u k3s-agent` on its address. */
    readonly journal: string
  }
): string | undefined => {
  const reason = error.reason
  const serverToken = `\`sudo cat /var/lib/rancher/k3s/server/token\` on ${context.server}`
  if (reason._tag === "TokenInvalid" && context.configured)
    return `k3s.token in homelab.yaml is not a full k3s token (K10<CA hash>::server:<password>, as the server's token file holds it): set it to the cluster's server token (${serverToken}), or remove k3s.token to have homelab read it from there; then run apply again`
  if (reason._tag === "TokenDiffers")
    return `k3s.token in homelab.yaml is not this cluster's token: its server token (${serverToken}) has another password after 'server:'. Set k3s.token to that token (or to its password), or remove k3s.token to have homelab read it from there; then run apply again (nothing was installed)`
  if (reason._tag !== "BadToken" && reason._tag !== "CaHashMismatch") return undefined
  if (!context.configured) {
    return `homelab read the token from ${context.server} (k3s.token is not set) and k3s refused it: check that ${context.server} is a server of the cluster this VM is to join (${serverToken}), and ${context.journal}`
  }
  const what =
    reason._tag === "CaHashMismatch"
      ? "k3s.token in homelab.yaml is another cluster's token (its CA hash is not this cluster's)"
      : reason.kind === "NotAServerToken"
        ? "k3s.token in homelab.yaml is an agent or bootstrap token, which a server cannot join with"
        : reason.kind === "DatastoreTokenMismatch"
          ? "k3s.token in homelab.yaml is not the token this cluster's datastore was encrypted with"
          : "the server refused k3s.token from homelab.yaml (a wrong password, or a bootstrap token that expired)"
  return `${what}: set it to the cluster's server token (${serverToken}), or remove k3s.token to have homelab read it from there; then run apply again`
}
