import { assert, describe, it } from "@effect/vitest"
import type { VmPending } from "@homelab/proxmox-client"
import { missingDriveFindings } from "../src/missingDrives.js"

const made = {
  boot: "order=scsi0",
  scsi0: "local-lvm:vm-5000-disk-0,discard=on,size=64G,ssd=1",
  ide2: "local-lvm:vm-5000-cloudinit,media=cdrom",
  ciuser: "ubuntu",
  ipconfig0: "ip=dhcp",
  net0: "virtio=BC:24:11:00:00:01,bridge=vmbr0"
}
const config = (
  current: Record<string, string>,
  pending: Record<string, string> = {},
  deletes: ReadonlyArray<string> = []
): VmPending => ({ digest: "d", current, pending, deletes })
const codes = (c: VmPending) =>
  missingDriveFindings(c, { vmid: 5000, name: "vm", node: "pve", storage: "local-lvm" }).map((f) => f.code)

describe("missingDriveFindings", () => {
  it("a VM as homelab makes it: nothing", () => {
    assert.deepStrictEqual(codes(config(made)), [])
  })

  it("a VM made without homelab's drives (an adopted one booting from virtio0, no cloud-init settings): nothing", () => {
    assert.deepStrictEqual(codes(config({ virtio0: "local-lvm:vm-5000-disk-0,size=32G", net0: made.net0 })), [])
    assert.deepStrictEqual(codes(config({ cores: "2" })), [])
    // a legacy boot string is not judged; an ISO on ide2 is no disk, and no cloud-init drive either
    assert.deepStrictEqual(codes(config({ ...made, boot: "cdn" })), [])
    assert.deepStrictEqual(codes(config({ ...made, ide2: "local:iso/ubuntu.iso,media=cdrom", ciuser: "ubuntu" })), [
      "vm.no-cloudinit-drive"
    ])
  })

  it("the boot disk detached (unused0), or pending removal: no boot disk, naming its volume", () => {
    const { scsi0: _, ...detached } = made
    const [finding] = missingDriveFindings(config({ ...detached, unused0: "local-lvm:vm-5000-disk-0" }), {
      vmid: 5000,
      name: "vm",
      node: "pve"
    })
    assert.deepStrictEqual(finding, {
      code: "vm.no-boot-disk",
      message:
        "VM 5000 vm has no disk attached: scsi0 was detached (its volume local-lvm:vm-5000-disk-0 is unused0), so the VM cannot boot again",
      hint: "attach it again: `qm set 5000 --scsi0 local-lvm:vm-5000-disk-0` on pve, then restart the VM"
    })
    assert.deepStrictEqual(codes(config(made, {}, ["scsi0"])), ["vm.no-boot-disk"])
    // its volume deleted too: the boot order still names it
    assert.deepStrictEqual(codes(config(detached)), ["vm.no-boot-disk"])
  })

  it("a boot order without any of its disks, now or held for the next start; one that lists a disk is fine", () => {
    assert.deepStrictEqual(codes(config({ ...made, boot: "order=net0" })), ["vm.boot-order"])
    const [held] = missingDriveFindings(config(made, { boot: "order=net0;ide2" }), {
      vmid: 5000,
      name: "vm",
      node: "pve"
    })
    assert.strictEqual(
      held?.message,
      "VM 5000 vm would not boot from its disk: its boot order (order=net0;ide2, held by PVE until the VM restarts) lists none of its disks"
    )
    assert.strictEqual(held?.hint, "`qm set 5000 --boot order=scsi0` on pve")
    assert.deepStrictEqual(codes(config({ ...made, boot: "order=net0;scsi0" })), [])
  })

  it("the cloud-init drive removed (its settings still in the config): named with the storage of the boot disk", () => {
    const { ide2: _, ...without } = made
    const [finding] = missingDriveFindings(config({ ...without, scsi0: "nvme:vm-5000-disk-0,size=64G" }), {
      vmid: 5000,
      name: "vm",
      node: "pve"
    })
    assert.strictEqual(finding?.code, "vm.no-cloudinit-drive")
    assert.strictEqual(
      finding?.hint,
      "add it again: `qm set 5000 --ide2 nvme:cloudinit` on pve, then restart the VM from PVE"
    )
    assert.deepStrictEqual(codes(config(made, {}, ["ide2"])), ["vm.no-cloudinit-drive"])
  })
})
