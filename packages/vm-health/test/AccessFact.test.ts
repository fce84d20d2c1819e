import { assert, describe, it } from "@effect/vitest"
import { hasPrivilege, type PermissionMap } from "../src/index.js"

describe("hasPrivilege", () => {
  const permissions: PermissionMap = {
    "/": { "Sys.Audit": 1, "VM.Audit": 0 },
    "/vms": { "VM.Allocate": true, "Sys.Audit": 1 },
    "/vms/105": { "VM.PowerMgmt": false },
    "/storage/local": { "Datastore.AllocateSpace": 0 }
  }

  it("a listed path answers directly, whatever the propagate flag", () => {
    assert.isTrue(hasPrivilege(permissions, "/vms/105", "VM.PowerMgmt"))
    assert.isTrue(hasPrivilege(permissions, "/storage/local", "Datastore.AllocateSpace"))
    assert.isTrue(hasPrivilege(permissions, "/", "VM.Audit"))
  })

  it("an unlisted path asks the nearest listed ancestor, counting only propagated privileges", () => {
    assert.isTrue(hasPrivilege(permissions, "/vms/200", "VM.Allocate"))
    assert.isTrue(hasPrivilege(permissions, "/nodes/pve", "Sys.Audit"))
    assert.isFalse(hasPrivilege(permissions, "/nodes/pve", "VM.Audit"))
    assert.isFalse(hasPrivilege(permissions, "/storage/local/x", "Datastore.AllocateSpace"))
  })

  it("the nearest listed path decides, not any ancestor", () => {
    // /vms/105 is listed without VM.Allocate, so /vms granting it does not matter
    assert.isFalse(hasPrivilege(permissions, "/vms/105", "VM.Allocate"))
  })

  it("nothing listed means nothing granted", () => {
    assert.isFalse(hasPrivilege({}, "/vms/105", "VM.Audit"))
    assert.isFalse(hasPrivilege({}, "/", "Sys.Audit"))
  })
})
