import { assert, describe, it } from "@effect/vitest"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import { parse } from "yaml"
import { mergeKubeconfig, rewriteKubeconfig, summarizeKubeconfig } from "../src/Kubeconfig.js"

const k3sYaml = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: U0VDUkVULUtFWQ==
`

describe("kubeconfig", () => {
  it("rewrites the server URL and names, keeps the CA and the credentials", () => {
    const out = Result.getOrThrow(
      rewriteKubeconfig(Redacted.make(k3sYaml), { server: "https://10.0.10.11:6443", name: "homelab" })
    )
    const doc = parse(Redacted.value(out))
    assert.deepStrictEqual(doc.clusters, [
      { cluster: { "certificate-authority-data": "Q0EtREFUQQ==", server: "https://10.0.10.11:6443" }, name: "homelab" }
    ])
    assert.deepStrictEqual(doc.contexts, [{ context: { cluster: "homelab", user: "homelab" }, name: "homelab" }])
    assert.strictEqual(doc["current-context"], "homelab")
    assert.strictEqual(doc.users[0].user["client-key-data"], "U0VDUkVULUtFWQ==")
    assert.strictEqual(String(out), "<redacted>")
  })

  it("merges: other entries kept, same-named ones replaced, the current context kept unless asked", () => {
    const fresh = Result.getOrThrow(
      rewriteKubeconfig(Redacted.make(k3sYaml), { server: "https://vip:6443", name: "homelab" })
    )
    const existing = `apiVersion: v1
kind: Config
current-context: work
clusters:
- { name: work, cluster: { server: "https://work:6443" } }
- { name: homelab, cluster: { server: "https://old:6443" } }
contexts:
- { name: work, context: { cluster: work, user: work } }
- { name: homelab, context: { cluster: homelab, user: homelab } }
users:
- { name: work, user: { token: t } }
- { name: homelab, user: { token: old } }
`
    const merged = parse(Redacted.value(Result.getOrThrow(mergeKubeconfig(existing, fresh))))
    assert.deepStrictEqual(
      merged.clusters.map((c: { name: string; cluster: { server: string } }) => [c.name, c.cluster.server]),
      [
        ["work", "https://work:6443"],
        ["homelab", "https://vip:6443"]
      ]
    )
    assert.strictEqual(merged.users.length, 2)
    assert.strictEqual(merged["current-context"], "work")
    // a context merged again stays where it was in the lists (kubectl config get-contexts shows the same order)
    const reordered = existing
      .replace(/(- \{ name: work, cluster.*\n)(- \{ name: homelab, cluster.*\n)/, "$2$1")
      .replace(/(- \{ name: work, context.*\n)(- \{ name: homelab, context.*\n)/, "$2$1")
      .replace(/(- \{ name: work, user.*\n)(- \{ name: homelab, user.*\n)/, "$2$1")
    const again = parse(Redacted.value(Result.getOrThrow(mergeKubeconfig(reordered, fresh))))
    for (const key of ["clusters", "contexts", "users"])
      assert.deepStrictEqual(
        again[key].map((e: { name: string }) => e.name),
        ["homelab", "work"],
        key
      )
    assert.strictEqual(again.clusters[0].cluster.server, "https://vip:6443")
    const switched = parse(Redacted.value(Result.getOrThrow(mergeKubeconfig(existing, fresh, { useContext: true }))))
    assert.strictEqual(switched["current-context"], "homelab")
    const intoNothing = parse(Redacted.value(Result.getOrThrow(mergeKubeconfig(undefined, fresh))))
    assert.strictEqual(intoNothing["current-context"], "homelab")
    assert.deepStrictEqual(Result.getOrThrow(summarizeKubeconfig(fresh, "homelab")), {
      name: "homelab",
      server: "https://vip:6443",
      currentContext: "homelab",
      contexts: ["homelab"]
    })
  })

  it("rejects what is not a kubeconfig, without quoting it", () => {
    const bad = mergeKubeconfig("clusters: {not: a list}\nsecret: hunter2", Redacted.make(k3sYaml))
    assert.deepStrictEqual(bad, Result.fail("the existing kubeconfig: clusters is not a list"))
    const broken = rewriteKubeconfig(Redacted.make("users: [\n  hunter2"), { server: "https://x:6443", name: "n" })
    assert.isTrue(Result.isFailure(broken))
    if (Result.isFailure(broken)) assert.notInclude(broken.failure, "hunter2")
  })
})
