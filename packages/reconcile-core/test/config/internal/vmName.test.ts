import { assert, describe, it } from "@effect/vitest"
import { vmNameProblem } from "../../../src/config/internal/vmName.js"

describe("vmNameProblem", () => {
  it("accepts DNS names whose labels fit in 63 characters; with k3s, lower case and at most 63 in all", () => {
    const label = "a".repeat(63)
    for (const name of ["k3s-vm-pve1", "web1.lab", label, "Web1", `${label}.${label}`]) {
      assert.isUndefined(vmNameProblem(name, false), name)
    }
    for (const name of ["k3s-vm-pve1", "web1.lab", label, "1-2"]) assert.isUndefined(vmNameProblem(name, true), name)
  })

  it("says what is wrong otherwise", () => {
    const problems = [
      ["web_1", false],
      ["-web", false],
      ["a".repeat(64), false],
      [`ok.${"b".repeat(64)}`, false],
      [Array.from({ length: 5 }, () => "c".repeat(60)).join("."), false],
      [`${"a".repeat(40)}.${"b".repeat(40)}`, true],
      ["Web1", true]
    ] as const
    assert.deepStrictEqual(
      problems.map(([name, k3s]) => {
        const problem = vmNameProblem(name, k3s)
        return [problem?.expected.split(" (")[0], problem?.detail, problem?.lowerCase]
      }),
      [
        ["a VM name that is a valid DNS name", undefined, undefined],
        ["a VM name that is a valid DNS name", undefined, undefined],
        ["a VM name whose labels are at most 63 characters", "64 characters", undefined],
        ["a VM name whose labels are at most 63 characters", "a label of 64 characters", undefined],
        ["a VM name of at most 253 characters", "304 characters", undefined],
        ["a VM name of at most 63 characters with k3s", "81 characters", undefined],
        ["a lower-case VM name with k3s", undefined, "web1"]
      ]
    )
  })
})
