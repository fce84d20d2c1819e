import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { parse as parseYaml, stringify as stringifyYaml } from "yaml"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { goDuration, parseDuration } from "../../src/k3s/Kubectl.js"
import { closeConnections, haScenario, run } from "./k3sHelpers.js"

const K = "sudo -n /usr/local/bin/k3s kubectl"

describe("Go durations", () => {
  it("prints and parses them like kubectl", () => {
    assert.deepStrictEqual(
      [goDuration(60_000), goDuration(30_000), goDuration(5_400_000), goDuration(90_500)],
      ["1m0s", "30s", "1h30m0s", "1m30.5s"]
    )
    assert.deepStrictEqual(
      [parseDuration("2m"), parseDuration("1h30m"), parseDuration("45"), parseDuration("x")],
      [120_000, 5_400_000, 45_000, undefined]
    )
  })
})

describe("kubectl get (selectors and output formats)", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("-l selects by label (k3s-ansible's server check), -o jsonpath prints the template", async () => {
    const servers = await run(
      sim,
      200,
      `${K} get nodes -l "node-role.kubernetes.io/control-plane=true" -o=jsonpath="{.items[*].metadata.name}"`
    )
    assert.deepStrictEqual([servers.code, servers.stdout], [0, "s1 s2 s3"])
    const agents = await run(sim, 200, `${K} get nodes -l '!node-role.kubernetes.io/control-plane' -o name`)
    assert.strictEqual(agents.stdout, "node/a1\nnode/a2\n")
    const none = await run(sim, 200, `${K} get nodes -l zone=nowhere`)
    assert.deepStrictEqual([none.code, none.stdout, none.stderr], [0, "", "No resources found\n"])
    const bad = await run(sim, 200, `${K} get nodes -l 'a b'`)
    assert.deepStrictEqual(
      [bad.code, bad.stderr],
      [1, "error: unable to parse requirement: found 'a b', expected: identifier\n"]
    )
    const ready = await run(
      sim,
      200,
      `${K} get nodes -o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'`
    )
    assert.strictEqual(ready.stdout, "s1=True\ns2=True\ns3=True\na1=True\na2=True\n")
    const one = await run(sim, 200, `${K} get node s2 -o jsonpath={.status.nodeInfo.kubeletVersion}`)
    assert.strictEqual(one.stdout, "v1.30.5+k3s1")
  })

  it("-o wide adds addresses, OS image, kernel and runtime; -o yaml is YAML", async () => {
    const wide = await run(sim, 200, `${K} get nodes -o wide`)
    const lines = wide.stdout.trimEnd().split("\n")
    assert.match(
      lines[0] ?? "",
      /^NAME +STATUS +ROLES +AGE +VERSION +INTERNAL-IP +EXTERNAL-IP +OS-IMAGE +KERNEL-VERSION +CONTAINER-RUNTIME$/
    )
    assert.match(
      lines.find((l) => l.startsWith("a1 ")) ?? "",
      /^a1 +Ready +<none> +\S+ +v1\.30\.5\+k3s1 +127\.78\.1\.21 +<none> +Ubuntu 24\.04\.1 LTS +6\.8\.0-49-generic +containerd:\/\/1\.7\.22-k3s1$/
    )
    const yaml = parseYaml((await run(sim, 200, `${K} get node s1 -o yaml`)).stdout) as {
      kind: string
      metadata: { name: string }
    }
    assert.deepStrictEqual([yaml.kind, yaml.metadata.name], ["Node", "s1"])
  })

  it("lists pods of k3s's packaged workloads and the scenario's, with PDBs", async () => {
    const pods = await run(sim, 200, `${K} get pods -A -o wide`)
    assert.match(
      pods.stdout,
      /^NAMESPACE +NAME +READY +STATUS +RESTARTS +AGE +IP +NODE +NOMINATED NODE +READINESS GATES\n/
    )
    for (const name of [
      "coredns-",
      "local-path-provisioner-",
      "metrics-server-",
      "traefik-",
      "svclb-traefik-",
      "web-",
      "db-"
    ])
      assert.include(pods.stdout, name)
    const web = await run(sim, 200, `${K} get pods -l app=web -o jsonpath='{.items[*].status.phase}'`)
    assert.strictEqual(web.stdout, "Running Running")
    const pdb = await run(sim, 200, `${K} get pdb`)
    assert.match(
      pdb.stdout,
      /^NAME +MIN AVAILABLE +MAX UNAVAILABLE +ALLOWED DISRUPTIONS +AGE\nweb +1 +N\/A +1 +\S+\ndb +1 +N\/A +0 +\S+\n$/
    )
    const sys = await run(sim, 200, `${K} get pods`)
    assert.notInclude(sys.stdout, "coredns")
    const onA1 = await run(sim, 200, `${K} get pods -A --field-selector spec.nodeName=a1 -o name`)
    assert.ok(
      onA1.stdout
        .split("\n")
        .filter((l) => l !== "")
        .every((l) => l.startsWith("pod/"))
    )
  })
})

describe("kubectl and its kubeconfig", () => {
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario())
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("reads /etc/rancher/k3s/k3s.yaml as root only (mode 0600 by default)", async () => {
    const user = await run(sim, 200, "/usr/local/bin/k3s kubectl get nodes")
    assert.strictEqual(user.code, 1)
    assert.include(
      user.stderr,
      'error loading config file "/etc/rancher/k3s/k3s.yaml": open /etc/rancher/k3s/k3s.yaml: permission denied'
    )
    const agent = await run(sim, 301, `${K} get nodes`)
    assert.deepStrictEqual(
      [agent.code, agent.stderr],
      [1, "The connection to the server localhost:8080 was refused - did you specify the right host or port?\n"]
    )
  })

  it("accepts a copied kubeconfig pointing at a server's address, refuses a foreign CA and an unknown context", async () => {
    const admin = parseYaml((await run(sim, 200, "sudo -n cat /etc/rancher/k3s/k3s.yaml")).stdout) as {
      clusters: Array<{ cluster: Record<string, string>; name: string }>
    }
    const cluster = admin.clusters[0]
    assert.ok(cluster !== undefined)
    cluster.cluster.server = "https://127.78.1.11:6443"
    // an agent has kubectl (the k3s symlink) but no admin kubeconfig
    const viaServer = await run(sim, 301, "cat > /home/ubuntu/kc", { stdin: stringifyYaml(admin) })
    assert.strictEqual(viaServer.code, 0)
    const ok = await run(sim, 301, "kubectl --kubeconfig /home/ubuntu/kc get nodes -o name")
    assert.deepStrictEqual([ok.code, ok.stdout], [0, "node/s1\nnode/s2\nnode/s3\nnode/a1\nnode/a2\n"])
    const env = await run(sim, 301, "KUBECONFIG=/home/ubuntu/kc kubectl get node s2 -o name")
    assert.strictEqual(env.stdout, "node/s2\n")
    const ctx = await run(sim, 301, "kubectl --kubeconfig /home/ubuntu/kc --context other get nodes")
    assert.deepStrictEqual([ctx.code, ctx.stderr], [1, "error: context was not found for specified context: other\n"])
    cluster.cluster["certificate-authority-data"] = Buffer.from("another CA").toString("base64")
    await run(sim, 301, "cat > /home/ubuntu/kc2", { stdin: stringifyYaml(admin) })
    const ca = await run(sim, 301, "kubectl --kubeconfig /home/ubuntu/kc2 get nodes")
    assert.strictEqual(
      ca.stderr,
      "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority\n"
    )
    const missing = await run(sim, 301, "kubectl --kubeconfig /home/ubuntu/nope get nodes")
    assert.strictEqual(missing.stderr, "error: stat /home/ubuntu/nope: no such file or directory\n")
  })
})
