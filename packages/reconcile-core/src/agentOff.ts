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
  const enabled = value
    .split(",")
    .map((part) => part.trim())
    .map((part) => (part.includes("=") ? part : `enabled=${part}`))
    .find((part) => part.startsWith("enabled="))
    ?.slice("enabled=".length)
  return enabled !== undefined && /^(?:1|on|yes|true)$/i.test(enabled) ? undefined : { agent: value }
}
