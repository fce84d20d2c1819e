import type { VmPending } from "@homelab/proxmox-client"

/**
 * The SMBIOS UUID of a VM's configuration (`smbios1: uuid=…`, which PVE sets at create), lower-case: the system UUID
 * its guest (and so its k3s Node) reports.
 */
export const smbiosUuid = (config: VmPending | undefined): string | undefined =>
  /(?:^|,)uuid=([0-9a-fA-F-]{36})(?:,|$)/.exec(config?.current.smbios1 ?? "")?.[1]?.toLowerCase()
