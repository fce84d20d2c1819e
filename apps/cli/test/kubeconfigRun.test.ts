import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { mergeTarget } from "../src/commands/kubeconfigRun.js"

describe("kubeconfig --merge target", () => {
  it("--out wins; else $KUBECONFIG's first file; else ~/.kube/config", () => {
    assert.strictEqual(mergeTarget("x/config", { KUBECONFIG: "/a" }), path.resolve("x/config"))
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: `/a/one${path.delimiter}/b/two`, HOME: "/h" }), "/a/one")
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: `${path.delimiter}/b/two`, HOME: "/h" }), "/b/two")
    assert.strictEqual(mergeTarget(undefined, { KUBECONFIG: "", HOME: "/h" }), "/h/.kube/config")
    assert.strictEqual(mergeTarget(undefined, { HOME: "/h" }), "/h/.kube/config")
  })
})
