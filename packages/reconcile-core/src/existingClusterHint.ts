import type { ExistingCluster } from "@homelab/k3s-join"

/**
 * What to do about VM `vm` (at `ip`) that holds a k3s cluster already where homelab was to start a new one
 * (`ExistingCluster`): keep that cluster (homelab joins the others to it) or remove it. The hint of `plan`'s
 * `k3s.existing-cluster` finding and of `apply`'s refused `InitK3s`, so that both say the same.
 */
export const existingClusterHint = (
  vm: string,
  ip: string,
  found: Pick<ExistingCluster, "member" | "agentUnitState">
): string => {
  if (found.member === null && found.agentUnitState !== undefined) {
    const keep = `if that is the cluster to keep, set k3s.server to one of its servers and give ${vm} role: agent in homelab.yaml`
    const drop = `if it is to go, run \`sudo /usr/local/bin/k3s-agent-uninstall.sh\` on ${ip}, or rebuild the VM with \`homelab reprovision ${vm}\``
    return `${keep}; ${drop}; then run apply again`
  }
  const keep = `if that is the cluster to keep, set k3s.server to one of its servers (or make it answer \`sudo k3s kubectl get nodes\` on ${ip}: homelab then joins the others to it)`
  const drop = `if it is to go, run \`sudo /usr/local/bin/k3s-uninstall.sh\` on ${ip}${found.member !== null ? " (or, without that script, `sudo rm -rf /var/lib/rancher/k3s`)" : ""}, or rebuild the VM with \`homelab reprovision ${vm}\``
  return `${keep}; ${drop}; then run apply again`
}
