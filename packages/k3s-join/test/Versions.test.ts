import { assert, describe, it } from "@effect/vitest"
import * as Result from "effect/Result"
import {
  checkUpgradeStep,
  decodeChannels,
  describeViolation,
  parseK3sVersion,
  planUpgrade,
  resolveChannel,
  skewStepViolation,
  skewViolations,
  upgradeOrder
} from "../src/Versions.js"

const releases = ["v1.30.14+k3s1", "v1.31.5+k3s1", "v1.31.13+k3s1", "v1.32.9+k3s1", "v1.33.5+k3s1"]

describe("version rules", () => {
  it("parses k3s versions", () => {
    assert.deepStrictEqual(parseK3sVersion("v1.30.5+k3s1"), {
      major: 1,
      minor: 30,
      patch: 5,
      k3s: 1,
      text: "v1.30.5+k3s1"
    })
    assert.strictEqual(parseK3sVersion("1.30.5"), undefined)
  })

  it("one minor at a time: intermediate releases planned (newest patch of each), or refused naming the minors", () => {
    assert.deepStrictEqual(Result.getOrThrow(planUpgrade("v1.30.5+k3s1", "v1.30.5+k3s1")).steps, [])
    assert.deepStrictEqual(Result.getOrThrow(planUpgrade("v1.30.5+k3s1", "v1.31.5+k3s1")).steps, ["v1.31.5+k3s1"])
    assert.deepStrictEqual(Result.getOrThrow(planUpgrade("v1.30.5+k3s1", "v1.33.5+k3s1", releases)).steps, [
      "v1.31.13+k3s1",
      "v1.32.9+k3s1",
      "v1.33.5+k3s1"
    ])
    const refused = planUpgrade("v1.30.5+k3s1", "v1.33.5+k3s1", ["v1.32.9+k3s1"])
    assert.deepStrictEqual(Result.isFailure(refused) ? refused.failure : undefined, {
      _tag: "SkipsMinor",
      from: "v1.30.5+k3s1",
      to: "v1.33.5+k3s1",
      missing: ["v1.31"]
    })
    if (Result.isFailure(refused))
      assert.strictEqual(
        describeViolation(refused.failure),
        "v1.30.5+k3s1 → v1.33.5+k3s1 skips v1.31: k3s upgrades one minor at a time (give a release of that minor)"
      )
  })

  it("refuses downgrades, other majors and non-versions", () => {
    const down = planUpgrade("v1.31.5+k3s1", "v1.30.14+k3s1")
    assert.strictEqual(Result.isFailure(down) && down.failure._tag, "Downgrade")
    assert.strictEqual(checkUpgradeStep("v1.30.5+k3s2", "v1.30.5+k3s1")?._tag, "Downgrade")
    assert.strictEqual(checkUpgradeStep("v1.30.5+k3s1", "v2.0.0+k3s1")?._tag, "MajorChange")
    assert.strictEqual(checkUpgradeStep("v1.30.5+k3s1", "latest")?._tag, "Unparseable")
    assert.strictEqual(checkUpgradeStep("v1.30.5+k3s1", "v1.32.9+k3s1")?._tag, "SkipsMinor")
    assert.strictEqual(checkUpgradeStep("v1.30.5+k3s1", "v1.31.5+k3s1"), undefined)
  })

  it("rolls out servers first, then agents; reports unsupported skew", () => {
    const nodes = [
      { name: "a1", role: "agent" as const, version: "v1.30.5+k3s1" },
      { name: "s2", role: "server" as const, version: "v1.30.5+k3s1" },
      { name: "s1", role: "server" as const, version: "v1.31.5+k3s1" },
      { name: "s3", role: "server" as const, version: "v1.30.5+k3s1" }
    ]
    assert.deepStrictEqual(
      upgradeOrder(nodes, "v1.31.5+k3s1").map((n) => n.name),
      ["s2", "s3", "a1"]
    )
    assert.deepStrictEqual(skewViolations(nodes), [])
    assert.deepStrictEqual(skewViolations([...nodes, { name: "a2", role: "agent", version: "v1.31.5+k3s1" }]), [
      "agent a2 (v1.31.5+k3s1) is newer than the oldest server s2 (v1.30.5+k3s1)"
    ])
    assert.deepStrictEqual(skewViolations([{ name: "s1", role: "server", version: "v1.32.9+k3s1" }, ...nodes]), [
      "servers are more than one minor apart (s1 v1.32.9+k3s1, s2 v1.30.5+k3s1, s1 v1.31.5+k3s1, s3 v1.30.5+k3s1)"
    ])
  })

  it("checks one step of a rollout: it may not add or widen a breach of the skew policy, but may narrow one", () => {
    const at = (s1: string, s2: string, s3: string, a1: string) => [
      { name: "s1", role: "server" as const, version: s1 },
      { name: "s2", role: "server" as const, version: s2 },
      { name: "s3", role: "server" as const, version: s3 },
      { name: "a1", role: "agent" as const, version: a1 }
    ]
    const [v31, v32, v33] = ["v1.31.5+k3s1", "v1.32.9+k3s1", "v1.33.5+k3s1"]
    // hop by hop: every server to the next minor, then the agent
    assert.strictEqual(skewStepViolation(at(v31, v31, v31, v31), "s1", v32), undefined)
    assert.strictEqual(skewStepViolation(at(v32, v32, v32, v31), "a1", v32), undefined)
    // a server two minors ahead of another, or an agent ahead of the oldest server, is refused
    assert.strictEqual(
      skewStepViolation(at(v32, v31, v31, v31), "s1", v33),
      `servers would be more than one minor apart (s1 ${v33}, s2 ${v31}, s3 ${v31}); s1 runs ${v32} now`
    )
    assert.strictEqual(
      skewStepViolation(at(v32, v32, v31, v31), "a1", v32),
      `agent a1 would run ${v32}, newer than the oldest server s3 (${v31}); a1 runs ${v31} now`
    )
    // already apart: a step that brings the oldest server closer is allowed, one that widens it is not
    assert.strictEqual(skewStepViolation(at(v33, v31, v31, v31), "s2", v32), undefined)
    assert.isDefined(skewStepViolation(at(v33, v32, v31, v31), "s1", "v1.34.1+k3s1"))
  })
})

describe("release channels", () => {
  it("decodes the channel server's list and resolves a channel or a version", () => {
    const json = JSON.stringify({
      type: "collection",
      data: [
        { id: "stable", type: "channel", name: "stable", latest: "v1.31.5+k3s1" },
        { id: "v1.30", type: "channel", name: "v1.30", latest: "v1.30.14+k3s1" },
        { id: "broken", name: "broken" }
      ]
    })
    const channels = decodeChannels(json)
    assert.isTrue(Result.isSuccess(channels))
    const list = Result.getOrThrow(channels)
    assert.deepStrictEqual(list, [
      { name: "stable", latest: "v1.31.5+k3s1" },
      { name: "v1.30", latest: "v1.30.14+k3s1" }
    ])
    assert.strictEqual(resolveChannel(list, "stable"), "v1.31.5+k3s1")
    assert.strictEqual(resolveChannel(list, "v1.29.9+k3s1"), "v1.29.9+k3s1")
    assert.strictEqual(resolveChannel(list, "testing"), undefined)
    assert.isTrue(Result.isFailure(decodeChannels("<html>")))
    assert.isTrue(Result.isFailure(decodeChannels("{}")))
  })
})
