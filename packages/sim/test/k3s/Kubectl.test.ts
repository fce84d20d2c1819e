import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { parse as parseYaml, stringify as stringifyYaml } from "yaml"
import { type SimHandle, startSimPromise } from "../../src/index.js"
import { goDuration, parseDuration } from "../../src/k3s/Kubectl.js"
import { testScenario } from "../helpers.js"
import { closeConnections, guestVm, haScenario, run, serverToken, writeToken } from "./k3sHelpers.js"

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

describe("kubectl wait (the watch)", () => {
  // The simulator's wall clock, moved by the test; once `ticking`, every reading is one millisecond later than the
  // one before, so that a Node's Ready comes due between two readings of one check, as when the process is
  // descheduled at that instant.
  let t = Date.UTC(2026, 0, 5, 10)
  let ticking = false
  const now = () => (ticking ? t++ : t)
  let sim: SimHandle
  beforeAll(async () => {
    sim = await startSimPromise(haScenario(), { now })
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })

  it("returns when a Node's Ready comes due between two readings of the clock (no change of the cluster wakes it)", async () => {
    // the clock starts ticking 2 and 3 ms before Ready is due: one of the two puts the moment it comes due between
    // any two consecutive readings, whichever reading the check takes first
    for (const lead of [2, 3]) {
      const stopped = await run(sim, 301, "sudo -n systemctl stop k3s-agent")
      assert.strictEqual(stopped.code, 0, stopped.stderr)
      t += 60_000 // past the grace period: Unknown, and the restarted agent's Node turns Ready only later
      const started = await run(sim, 301, "sudo -n systemctl start k3s-agent")
      assert.strictEqual(started.code, 0, started.stderr)
      // registered at `t` (the clock stands still): Ready at t + readyDelayMs × time scale
      const readyAt = t + 3000 * 0.01
      const before = await run(sim, 200, `${K} get node a1 -o jsonpath={.status.conditions[-1:].status}`)
      assert.strictEqual(before.stdout, "False")
      // a watch that missed the moment sleeps until its timeout (an hour); the SSH limit is only a hang guard
      const waited = await run(sim, 200, `${K} wait --for=condition=Ready node/a1 --timeout=1h`, {
        timeoutMs: 20_000,
        onSend: () => {
          t = readyAt - lead
          ticking = true
        }
      })
      ticking = false
      assert.deepStrictEqual(
        [lead, waited.timedOut, waited.code, waited.stdout, waited.stderr],
        [lead, false, 0, "node/a1 condition met\n", ""]
      )
    }
  }, 90_000)
})

describe("a Node's labels and taints: --node-label, --node-taint, kubectl label and kubectl taint", () => {
  let sim: SimHandle
  let token = ""
  const SERVER = "https://127.78.1.10:6443"
  beforeAll(async () => {
    sim = await startSimPromise(
      testScenario({
        vms: [
          guestVm(200, "s1", "127.78.1.10", { k3s: { role: "server", clusterInit: true } }),
          guestVm(301, "a1", "127.78.1.21", {
            k3s: { role: "agent", flags: ["--node-label=tier=gold", "--node-taint=gpu=true:NoSchedule"] }
          })
        ],
        k3s: { version: "v1.30.5+k3s1", joinDelayMs: 2000, readyDelayMs: 3000 }
      })
    )
    token = await serverToken(sim)
  })
  afterAll(async () => {
    await closeConnections()
    await sim.stop()
  })
  const node = async () =>
    JSON.parse((await run(sim, 200, `${K} get node a1 -o json`)).stdout) as {
      metadata: { labels: Record<string, string> }
      spec: { taints?: Array<Record<string, string>> }
    }

  it("registers with them; a restart with other flags sets the labels again, merged, and leaves the taints", async () => {
    const before = await node()
    assert.strictEqual(before.metadata.labels.tier, "gold")
    assert.deepStrictEqual(before.spec.taints, [{ effect: "NoSchedule", key: "gpu", value: "true" }])
    // install.sh again with other flags: the unit restarts with them (k3s-io/k3s pkg/agent/run.go configureNode's
    // updateMutableLabels merges the --node-label labels into the Node's; the kubelet applies --register-with-taints
    // only when it creates the Node)
    await writeToken(sim, 301, token)
    await run(sim, 301, "curl -sfL https://get.k3s.io -o /tmp/k3s-install.sh")
    const inst = await run(
      sim,
      301,
      `sudo -n env INSTALL_K3S_VERSION=v1.30.5+k3s1 sh /tmp/k3s-install.sh agent --server ${SERVER} --node-label=zone=a --node-taint=spot=yes:NoExecute`
    )
    assert.strictEqual(inst.code, 0, inst.stderr)
    const after = await node()
    assert.deepStrictEqual([after.metadata.labels.tier, after.metadata.labels.zone], ["gold", "a"])
    assert.deepStrictEqual(after.spec.taints, [{ effect: "NoSchedule", key: "gpu", value: "true" }])
  })

  it("kubectl label removes a label (and says so when it is not there), sets one with --overwrite", async () => {
    const removed = await run(sim, 200, `${K} label node a1 tier-`)
    assert.deepStrictEqual([removed.code, removed.stdout], [0, "node/a1 unlabeled\n"])
    assert.isUndefined((await node()).metadata.labels.tier)
    const again = await run(sim, 200, `${K} label node a1 tier-`)
    assert.deepStrictEqual([again.code, again.stdout], [0, 'label "tier" not found.\nnode/a1 not labeled\n'])
    const taken = await run(sim, 200, `${K} label node a1 zone=b`)
    assert.deepStrictEqual(
      [taken.code, taken.stderr],
      [1, "error: 'zone' already has a value (a), and --overwrite is false\n"]
    )
    const set = await run(sim, 200, `${K} label --overwrite nodes/a1 zone=b`)
    assert.deepStrictEqual([set.code, set.stdout, (await node()).metadata.labels.zone], [0, "node/a1 labeled\n", "b"])
    const missing = await run(sim, 200, `${K} label node a9 tier-`)
    assert.deepStrictEqual([missing.code, missing.stderr], [1, 'Error from server (NotFound): nodes "a9" not found\n'])
  })

  it("kubectl taint adds (or with --overwrite changes) a taint, removes one by key and effect, and fails on one not there", async () => {
    const added = await run(sim, 200, `${K} taint node a1 spot=yes:NoExecute`)
    assert.deepStrictEqual([added.code, added.stdout], [0, "node/a1 tainted\n"])
    const clash = await run(sim, 200, `${K} taint node a1 spot=no:NoExecute`)
    assert.deepStrictEqual(
      [clash.code, clash.stderr],
      [1, "error: node a1 already has spot taint(s) with same effect(s) and --overwrite is false\n"]
    )
    const changed = await run(sim, 200, `${K} taint node a1 spot=no:NoExecute --overwrite`)
    assert.deepStrictEqual([changed.code, changed.stdout], [0, "node/a1 modified\n"])
    assert.deepStrictEqual((await node()).spec.taints, [
      { effect: "NoExecute", key: "spot", value: "no" },
      { effect: "NoSchedule", key: "gpu", value: "true" }
    ])
    const removed = await run(sim, 200, `${K} taint node a1 gpu:NoSchedule-`)
    assert.deepStrictEqual([removed.code, removed.stdout], [0, "node/a1 untainted\n"])
    const gone = await run(sim, 200, `${K} taint node a1 gpu:NoSchedule-`)
    assert.deepStrictEqual([gone.code, gone.stderr], [1, 'error: taint "gpu:NoSchedule" not found\n'])
    const byKey = await run(sim, 200, `${K} taint node a1 spot-`)
    assert.deepStrictEqual(
      [byKey.code, byKey.stdout, (await node()).spec.taints],
      [0, "node/a1 untainted\n", undefined]
    )
  })
})
