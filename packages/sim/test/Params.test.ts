import { assert, describe, it } from "@effect/vitest"
import type { PveError } from "../src/index.js"
import {
  bool,
  int,
  normaliseTags,
  parseForm,
  pveVmid,
  splitList,
  str,
  taskStatusTypeList,
  urlencoded,
  validate
} from "../src/internal/Params.js"

const errorsOf = (f: () => unknown): Record<string, string> | undefined => {
  try {
    f()
    return undefined
  } catch (e) {
    return (e as PveError).errors
  }
}

describe("Params", () => {
  it("split_list: NUL bytes if any, else `,` `;` and whitespace; trailing empty fields dropped", () => {
    assert.deepStrictEqual(splitList(" ok,warning; error  unknown "), ["ok", "warning", "error", "unknown"])
    assert.deepStrictEqual(splitList("a b\0c,d\0\0"), ["a b", "c,d"])
    assert.deepStrictEqual(splitList(""), [])
  })

  it("pve-task-status-type-list: each element ok, error, warning or unknown in any case; an empty list is fine", () => {
    assert.isUndefined(taskStatusTypeList("OK,warning;Error unknown"))
    assert.isUndefined(taskStatusTypeList(""))
    assert.strictEqual(taskStatusTypeList("ok,running"), "invalid status 'running'\n")
  })

  it("decodes forms: & and ; separate, + is a space, repeated keys become arrays", () => {
    assert.deepStrictEqual(parseForm("a=1;b=x+y&command=ls&command=-l&e=%2520"), {
      a: "1",
      b: "x y",
      command: ["ls", "-l"],
      e: "%20"
    })
  })

  it("validates in pve-common order with its messages", () => {
    const schema = { vmid: pveVmid, full: bool(), limit: int({ minimum: 0 }), name: str({ maxLength: 3 }) }
    assert.deepStrictEqual(
      errorsOf(() =>
        validate({ vmid: "99", full: "yes", limit: "-1", name: "abcd", x: "1" }, schema, undefined, false)
      ),
      {
        vmid: "invalid format - value does not look like a valid VM ID\n",
        full: "type check ('boolean') failed - got 'yes'",
        limit: "value must have a minimum value of 0",
        name: "value may only be 3 characters long",
        x: "property is not defined in schema and the schema does not allow additional properties"
      }
    )
    assert.deepStrictEqual(
      errorsOf(() => validate({}, schema, undefined, false)),
      {
        vmid: "property is missing and it is not optional"
      }
    )
    assert.deepStrictEqual(validate({ vmid: "100", full: "yes" }, schema, undefined, true), { vmid: "100", full: "1" })
  })

  it("sshkeys must be strictly percent-encoded; tags are normalised", () => {
    assert.isUndefined(urlencoded(encodeURIComponent("ssh-ed25519 AAAA me@host\n")))
    assert.strictEqual(urlencoded("ssh-ed25519+AAAA"), "invalid urlencoded string: ssh-ed25519+AAAA\n")
    assert.strictEqual(normaliseTags("Prod;k8s, prod  lab"), "k8s;lab;prod")
  })
})
