import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import {
  isPasswordMark,
  passwordMark,
  passwordMarkKid,
  passwordMarkKidOf,
  passwordMarkState
} from "../src/PasswordMark.js"

const key = Redacted.make("0b7c5a52-6f1e-4d4e-9d8e-6a1f3c2b9e01")
const rotated = Redacted.make("5e2d9c1a-3b4f-4a6e-8c7d-2f1e0a9b8c02")
const hunter2 = Redacted.make("hunter2")

/** PVE's pve-tag format (pve-common JSONSchema `pve-tag`), case-insensitive. */
const pveTag = /^[a-z0-9_][a-z0-9_\-+.]*$/i

describe("passwordMark", () => {
  it("is homelab-pw-<kid>-<mac>: HMAC-SHA256 with the API token's secret (vectors from openssl dgst -sha256 -hmac)", () => {
    // printf 'homelab vm.password key id' | openssl dgst -sha256 -hmac "$KEY" → 7987ef0c…
    assert.strictEqual(passwordMarkKid(key), "7987")
    // printf 'homelab vm.password\0k3s-vm-pve\0hunter2' | openssl dgst -sha256 -hmac "$KEY" → d56a92344b13c796…
    assert.deepStrictEqual(passwordMark(key, "k3s-vm-pve", hunter2), {
      kid: "7987",
      tag: "homelab-pw-7987-d56a92344b13"
    })
    assert.strictEqual(passwordMarkKid(rotated), "30c8")
  })

  it("is a valid PVE tag that PVE's normalisation (lowercase) keeps as it is", () => {
    const { tag } = passwordMark(key, "k3s-vm-pve", hunter2)
    assert.match(tag, pveTag)
    assert.strictEqual(tag, tag.toLowerCase())
    assert.isTrue(isPasswordMark(tag))
    assert.isTrue(isPasswordMark(tag.toUpperCase()), "a case-sensitive tag-style may keep another case")
    assert.strictEqual(passwordMarkKidOf(tag.toUpperCase()), "7987")
    for (const other of ["homelab-managed", "homelab-cloudinit", "homelab-pw-7987", "homelab-pw-798-d56a92344b13"])
      assert.isFalse(isPasswordMark(other), other)
  })

  it("tells nothing without the key: the password, the VM's name and the key all change it; neither is in it", () => {
    const mark = passwordMark(key, "k3s-vm-pve", hunter2).tag
    assert.notStrictEqual(passwordMark(key, "k3s-vm-pve", Redacted.make("hunter3")).tag, mark)
    // two VMs with one password: unrelated marks
    assert.notStrictEqual(passwordMark(key, "k3s-vm-pve-2", hunter2).tag.slice(16), mark.slice(16))
    assert.notStrictEqual(passwordMark(rotated, "k3s-vm-pve", hunter2).tag, mark)
    assert.strictEqual(
      passwordMark(key, "k3s-vm-pve", Redacted.make("hunter2")).tag,
      mark,
      "the same inputs: the same mark"
    )
    assert.notInclude(mark, "hunter2")
    assert.notInclude(JSON.stringify(passwordMark(key, "k3s-vm-pve", hunter2)), Redacted.value(key))
  })
})

describe("passwordMarkState", () => {
  const want = passwordMark(key, "k3s-vm-pve", hunter2)
  const old = passwordMark(key, "k3s-vm-pve", Redacted.make("old")).tag
  const otherKey = passwordMark(rotated, "k3s-vm-pve", hunter2).tag

  it("matches: the mark of vm.password is on the VM (other marks beside it do not matter)", () => {
    assert.strictEqual(passwordMarkState(["homelab-managed", want.tag], want), "matches")
    assert.strictEqual(passwordMarkState([old, want.tag.toUpperCase()], want), "matches")
  })

  it("changed: a mark of the same key, another password", () => {
    assert.strictEqual(passwordMarkState(["homelab-managed", old], want), "changed")
    assert.strictEqual(passwordMarkState([otherKey, old], want), "changed")
  })

  it("unmarked: no mark; other-key: only marks of another key (the token's secret rotated)", () => {
    assert.strictEqual(passwordMarkState(["homelab-managed", "prod"], want), "unmarked")
    assert.strictEqual(passwordMarkState([], want), "unmarked")
    assert.strictEqual(passwordMarkState(["homelab-managed", otherKey], want), "other-key")
  })
})
