import { assert, describe, it } from "vitest"
import { matchesSelector, parseFieldSelector, parseSelector } from "../../src/k3s/LabelSelector.js"

const sel = (s: string) => {
  const r = parseSelector(s)
  if ("error" in r) throw new Error(r.error)
  return r
}

describe("label selectors (kubectl -l)", () => {
  const server = { "node-role.kubernetes.io/control-plane": "true", zone: "a" }
  const agent = { zone: "b" }

  it("equality, inequality, sets and existence, all of a comma list", () => {
    assert.isTrue(matchesSelector(sel("node-role.kubernetes.io/control-plane=true"), server))
    assert.isFalse(matchesSelector(sel("node-role.kubernetes.io/control-plane=true"), agent))
    assert.isTrue(matchesSelector(sel("node-role.kubernetes.io/control-plane==true,zone=a"), server))
    assert.isTrue(matchesSelector(sel("zone!=a"), agent))
    assert.isTrue(matchesSelector(sel("zone in (a, c)"), server))
    assert.isFalse(matchesSelector(sel("zone notin (a)"), server))
    assert.isTrue(matchesSelector(sel("!node-role.kubernetes.io/control-plane"), agent))
    assert.isTrue(matchesSelector(sel("zone"), agent))
    assert.isTrue(matchesSelector(sel(""), agent))
  })

  it("rejects what kubectl rejects", () => {
    assert.deepStrictEqual(parseSelector("a=b c"), {
      error: "unable to parse requirement: found 'a=b c', expected: identifier"
    })
    assert.deepStrictEqual(parseSelector("-bad=x"), { error: 'unable to parse requirement: invalid label key "-bad"' })
    assert.deepStrictEqual(parseFieldSelector("spec.nodeName=n1,status.phase!=Pending"), [
      { path: "spec.nodeName", eq: true, value: "n1" },
      { path: "status.phase", eq: false, value: "Pending" }
    ])
  })
})
