import { assert, describe, it } from "@effect/vitest"
import { isFallbackReason, isTransientReason } from "../src/index.js"
import { classifyPveshStderr, classifyRestError, classifyStatus } from "../src/internal/classify.js"

const fetchFailed = (code: string) => {
  const inner = Object.assign(new Error("socket says no"), { code })
  const typeError = new TypeError("fetch failed", { cause: inner })
  return Object.assign(new Error(`FaILED to call GET https://pve:8006/api2/json/version cause by:${inner.message}`), {
    cause: typeError
  })
}

describe("classifying proxmox-api errors", () => {
  it("reads the status from the message text (return Error / connection failed)", () => {
    const r400 = classifyRestError(
      new Error(
        `POST https://h/api2/json/nodes/pve/qemu return Error 400 Parameter verification failed.: {"data":null,"errors":{"vmid":"VM 100 already exists"}}`
      )
    )
    assert.strictEqual(r400._tag, "AlreadyExists")
    const r403 = classifyRestError(
      new Error(
        `GET https://h/api2/json/nodes connection failed with 403 Permission check failed (/nodes/pve, Sys.Audit) return: {"data":null}`
      )
    )
    assert.deepInclude(r403, { _tag: "PermissionDenied", path: "/nodes/pve", privilege: "Sys.Audit" })
    const r596 = classifyRestError(
      new Error(
        `GET https://h/api2/json/nodes/pve2/status connection failed with 596 Connection timed out return: {"data":null}`
      )
    )
    assert.deepInclude(r596, { _tag: "ProxyError", status: 596 })
    const r599 = classifyRestError(
      new Error(`GET https://h/x connection failed with 599 Too many redirections return: {"data":null}`)
    )
    assert.isTrue(isTransientReason(r599))
    assert.isFalse(isTransientReason(r596))
  })

  it("takes the innermost cause code for network and TLS failures", () => {
    assert.deepInclude(classifyRestError(fetchFailed("ECONNREFUSED")), { _tag: "Unreachable", kind: "refused" })
    assert.deepInclude(classifyRestError(fetchFailed("ENOTFOUND")), { _tag: "Unreachable", kind: "dns" })
    assert.deepInclude(classifyRestError(fetchFailed("ECONNRESET")), { _tag: "Unreachable", kind: "reset" })
    assert.deepInclude(classifyRestError(fetchFailed("UND_ERR_CONNECT_TIMEOUT")), {
      _tag: "Unreachable",
      kind: "timeout"
    })
    const tls = classifyRestError(fetchFailed("UNABLE_TO_VERIFY_LEAF_SIGNATURE"))
    assert.deepInclude(tls, { _tag: "TlsUntrusted", code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
    assert.isTrue(isFallbackReason(tls))
    const abort = Object.assign(new Error("FaILED to call GET https://h/x"), {
      cause: Object.assign(new Error("This operation was aborted"), { name: "AbortError" })
    })
    assert.deepInclude(classifyRestError(abort), { _tag: "Unreachable", kind: "timeout" })
  })

  it("ticket login: 401 → AuthRejected, TLS failure → TlsUntrusted", () => {
    const login = Object.assign(new Error("Auth https://h/api2/json/access/ticket Failed!"), {
      cause: new Error("login failed with 401: authentication failure ")
    })
    assert.strictEqual(classifyRestError(login)._tag, "AuthRejected")
    const tls = Object.assign(new Error("Auth https://h/api2/json/access/ticket Failed!"), {
      cause: fetchFailed("DEPTH_ZERO_SELF_SIGNED_CERT").cause
    })
    assert.deepInclude(classifyRestError(tls), { _tag: "TlsUntrusted", code: "DEPTH_ZERO_SELF_SIGNED_CERT" })
  })

  it("semantic 500s by message", () => {
    assert.deepInclude(
      classifyStatus(500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout", undefined),
      {
        _tag: "Locked",
        lock: "flock"
      }
    )
    assert.isTrue(isTransientReason(classifyStatus(500, "can't lock file 'x' - got timeout", undefined)))
    assert.deepInclude(classifyStatus(500, "VM is locked (backup)", undefined), { _tag: "Locked", lock: "backup" })
    assert.isFalse(isTransientReason(classifyStatus(500, "VM is locked (backup)", undefined)))
    assert.deepInclude(
      classifyStatus(
        500,
        "Only root can pass arbitrary filesystem paths. at /usr/share/perl5/PVE/Storage.pm line 512.",
        undefined
      ),
      {
        _tag: "PermissionDenied",
        detail: "Only root can pass arbitrary filesystem paths."
      }
    )
    assert.deepInclude(
      classifyStatus(500, "unable to create VM 100 - VM 100 already exists on node 'pve2'", undefined),
      {
        _tag: "AlreadyExists"
      }
    )
  })
})

describe("classifying pvesh stderr", () => {
  it("parses `<code> <msg>` plus `param: error` lines, ignoring the usage line", () => {
    const r = classifyPveshStderr(
      "400 Parameter verification failed.\nmemory: value must have a minimum value of 16\nname: invalid format - value does not look like a valid DNS name\n\npvesh create <api_path> [OPTIONS] [FORMAT_OPTIONS]\n"
    )
    assert.strictEqual(r._tag, "InvalidParameter")
    if (r._tag === "InvalidParameter") {
      assert.deepStrictEqual(r.errors, {
        memory: "value must have a minimum value of 16",
        name: "invalid format - value does not look like a valid DNS name"
      })
    }
    assert.deepInclude(classifyPveshStderr("403 Permission check failed (/vms/100, VM.Audit)\n"), {
      _tag: "PermissionDenied",
      path: "/vms/100"
    })
  })

  it("plain dies are treated like a 500 and classified by text; lock-wait noise is ignored", () => {
    assert.strictEqual(
      classifyPveshStderr("Configuration file 'nodes/pve/qemu-server/999.conf' does not exist\n")._tag,
      "NotFound"
    )
    assert.deepInclude(classifyPveshStderr("trying to acquire lock...\nVM is locked (create)\n"), {
      _tag: "Locked",
      lock: "create"
    })
    assert.deepInclude(classifyPveshStderr("VM 100 is running - destroy failed\n"), { _tag: "ApiError", status: 500 })
    assert.strictEqual(classifyPveshStderr("no 'get' handler for '/foo'\n")._tag, "NotFound")
  })
})
