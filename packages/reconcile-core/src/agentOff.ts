import type { VmPending } from "@homelab/proxmox-client"

/**
 * The VM's `agent` setting when its config turns the QEMU guest agent off (no `agent` key, or `enabled` 0): QEMU then
 * has no agent channel, and the VM's IP can never be read, however long one waits. `undefined` when the agent is on
 * or the config was not read. PVE's format: `[enabled=]<1|0>[,freeze-fs-on-backup=…][,fstrim_cloned_disks=…][,type=…]`.
 */
export const agentOff = (config: VmPending | undefined): { readonly agent: string } | undefined => {
  if (config === undefined) return undefined
  const value = config.current.agent
  if (value === undefined) return { agent: "unset" }
  return enabled(value) ? undefined : { agent: value }
}

/** `agent`'s value turns the agent on (`enabled` 1). */
const enabled = (value: string): boolean => {
  const on = value
    .split(",")
    .map((part) => part.trim())
    .map((part) => (part.includes("=") ? part : `enabled=${part}`))
    .find((part) => part.startsWith("enabled="))
    ?.slice("enabled=".length)
  return on !== undefined && /^(?:1|on|yes|true)$/i.test(on)
}

/**
 * A note (`vm.agent-off`, info) for a VM of ours whose config turns the guest agent off by an explicit `agent` setting
 * (homelab creates its VMs with `agent: 1`; one with no `agent` key was made without, and is left unsaid), or that
 * PVE holds such a setting for until the VM restarts: homelab reads the VM's IP from the agent, so `status` shows
 * none and a k3s join (or a rejoin of its Node) cannot find the VM. `agent` is not among the settings homelab.yaml
 * names, so homelab does not change it. `undefined` when the agent is on, now and after a restart.
 */
export const agentOffNote = (
  config: VmPending,
  vm: { readonly vmid: number; readonly name: string; readonly node: string }
): { readonly code: "vm.agent-off"; readonly message: string; readonly hint: string } | undefined => {
  const current = config.current.agent
  const next = config.deletes.includes("agent") ? undefined : (config.pending.agent ?? current)
  const offNow = current !== undefined && !enabled(current)
  const offNext = next !== undefined && !enabled(next)
  const why = "homelab reads its IP from the guest agent (`homelab status` shows none, and a k3s join needs it)"
  if (offNow)
    return {
      code: "vm.agent-off",
      message: `VM ${vm.vmid} ${vm.name} runs with its guest agent off (agent: ${current}): ${why}`,
      hint: `\`qm set ${vm.vmid} --agent enabled=1\` on ${vm.node}, then restart the VM`
    }
  if (offNext)
    return {
      code: "vm.agent-off",
      message: `VM ${vm.vmid} ${vm.name} turns its guest agent off at its next restart (agent: ${next}, held by PVE until then): ${why}`,
      hint: `\`qm set ${vm.vmid} --revert agent\` on ${vm.node} drops the change`
    }
  return undefined
}
