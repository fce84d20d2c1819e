import { parse as parseYaml, stringify as stringifyYaml } from "yaml"
import type { GuestCommandContext, GuestCommandResult } from "../Guest.js"
import { canRead } from "./GuestFs.js"
import { JsonPathError, jsonPath } from "./JsonPath.js"
import type { K3sCluster, NodeRecord, NodeTaint, SecretRecord } from "./K3sCluster.js"
import { age, kubectlJson, listJson, nodeJson, nodeReady, nodeRows, secretJson, table } from "./K3sJson.js"
import type { K3sHost, K3sSim } from "./K3sSim.js"
import { KUBECONFIG, parseTaint, TAINT_EFFECTS } from "./K3sSim.js"
import { type LabelSelector, matchesSelector, parseFieldSelector, parseSelector } from "./LabelSelector.js"
import { type PodRecord, podLabels, type Workload, type Workloads } from "./Workloads.js"

/**
 * `kubectl` (and `k3s kubectl`) inside a guest: the kubeconfig it connects with, the verbs the project needs (`get`,
 * `delete`, `wait`, `cordon`, `uncordon`, `drain`) over nodes, pods, node-password secrets and PDBs, with kubectl's
 * output (tables, `-o wide|json|yaml|name|jsonpath=…`), selectors and error texts (kubernetes/kubectl).
 */

const ok = (stdout = "", stderr = ""): GuestCommandResult => ({ stdout, stderr, code: 0 })
const fail = (stderr: string, code = 1, stdout = ""): GuestCommandResult => ({ stdout, stderr, code })
const refused = (where: string) =>
  fail(`The connection to the server ${where} was refused - did you specify the right host or port?\n`)

/** Go's `time.Duration` text (`1m0s`, `30s`, `1h2m3s`, `500ms`). */
export const goDuration = (ms: number): string => {
  if (ms < 1000) return `${ms}ms`
  const total = ms / 1000
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total - h * 3600 - m * 60
  const sec = `${Number.isInteger(s) ? s : Number(s.toFixed(3))}s`
  return h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec
}

/** `30s`, `2m`, `1h30m`, `500ms`, or plain seconds. */
export const parseDuration = (s: string): number | undefined => {
  const t = s.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t) * 1000
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g
  let total = 0
  let consumed = ""
  for (const m of t.matchAll(re)) {
    const v = Number(m[1])
    total += m[2] === "ms" ? v : m[2] === "s" ? v * 1000 : m[2] === "m" ? v * 60_000 : v * 3_600_000
    consumed += m[0]
  }
  return consumed === t && t !== "" ? total : undefined
}

interface Options {
  readonly words: Array<string>
  output: string | undefined
  selector: string | undefined
  fieldSelector: string | undefined
  namespace: string | undefined
  allNamespaces: boolean
  ignoreNotFound: boolean
  /** ms; `undefined`: the verb's default */
  timeoutMs: number | undefined
  waitFor: Array<string>
  kubeconfig: string | undefined
  context: string | undefined
  noHeaders: boolean
  wait: boolean
  all: boolean
  ignoreDaemonsets: boolean
  deleteEmptyDirData: boolean
  force: boolean
  disableEviction: boolean
  podSelector: string | undefined
  overwrite: boolean
  patch: string | undefined
  patchType: string | undefined
}

const BOOL_FLAGS: Record<string, keyof Options> = {
  "--ignore-not-found": "ignoreNotFound",
  "--no-headers": "noHeaders",
  "--all": "all",
  "-A": "allNamespaces",
  "--all-namespaces": "allNamespaces",
  "--ignore-daemonsets": "ignoreDaemonsets",
  "--delete-emptydir-data": "deleteEmptyDirData",
  "--delete-local-data": "deleteEmptyDirData",
  "--force": "force",
  "--disable-eviction": "disableEviction",
  "--wait": "wait",
  "--overwrite": "overwrite"
}

const parseOptions = (argv: ReadonlyArray<string>): Options | { readonly error: string } => {
  const o: Options = {
    words: [],
    output: undefined,
    selector: undefined,
    fieldSelector: undefined,
    namespace: undefined,
    allNamespaces: false,
    ignoreNotFound: false,
    timeoutMs: undefined,
    waitFor: [],
    kubeconfig: undefined,
    context: undefined,
    noHeaders: false,
    wait: true,
    all: false,
    ignoreDaemonsets: false,
    deleteEmptyDirData: false,
    force: false,
    disableEviction: false,
    podSelector: undefined,
    overwrite: false,
    patch: undefined,
    patchType: undefined
  }
  const VALUED = [
    "-o",
    "--output",
    "-l",
    "--selector",
    "--field-selector",
    "-n",
    "--namespace",
    "--for",
    "--kubeconfig",
    "--context",
    "--pod-selector",
    "--grace-period",
    "--timeout",
    "-p",
    "--patch",
    "--type"
  ]
  const set = (name: string, v: string): string | undefined => {
    switch (name) {
      case "-o":
      case "--output":
        o.output = v
        break
      case "-l":
      case "--selector":
        o.selector = v
        break
      case "--field-selector":
        o.fieldSelector = v
        break
      case "-n":
      case "--namespace":
        o.namespace = v
        break
      case "--for":
        o.waitFor.push(v)
        break
      case "--kubeconfig":
        o.kubeconfig = v
        break
      case "--context":
        o.context = v
        break
      case "--pod-selector":
        o.podSelector = v
        break
      case "-p":
      case "--patch":
        o.patch = v
        break
      case "--type":
        o.patchType = v
        break
      case "--timeout": {
        const ms = parseDuration(v)
        if (ms === undefined) return `invalid argument "${v}" for "--timeout" flag: time: invalid duration "${v}"`
        o.timeoutMs = ms
      }
    }
    return undefined
  }
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i] as string
    const eq = x.indexOf("=")
    const name = x.startsWith("-") && eq > 0 ? x.slice(0, eq) : x
    const bool = BOOL_FLAGS[name]
    if (bool !== undefined) {
      const v = eq > 0 ? x.slice(eq + 1) : "true"
      ;(o as unknown as Record<string, unknown>)[bool] = v === "true"
      continue
    }
    if (VALUED.includes(name)) {
      const v = eq > 0 ? x.slice(eq + 1) : argv[++i]
      if (v === undefined) return { error: `flag needs an argument: ${name}` }
      const err = set(name, v)
      if (err !== undefined) return { error: err }
      continue
    }
    if (/^-o\S/.test(x)) {
      o.output = x.slice(2)
      continue
    }
    if (/^-l\S/.test(x)) {
      o.selector = x.slice(2)
      continue
    }
    if (x.startsWith("-") && x !== "-") return { error: `unknown flag: ${name}` }
    o.words.push(x)
  }
  return o
}

// ------------------------------------------------------------------------------------------ the connection

type Connection = { readonly cluster: K3sCluster; readonly server: K3sHost }

const decodeB64 = (v: unknown): string => (typeof v === "string" ? Buffer.from(v, "base64").toString("utf8") : "")

/** The kubeconfig kubectl loads and the apiserver it reaches, as kubectl would report a failure. */
const connect = (sim: K3sSim, c: GuestCommandContext, o: Options): Connection | GuestCommandResult => {
  const g = c.guest
  const home = c.user === "root" ? "/root" : `/home/${c.user}`
  const explicit = o.kubeconfig ?? (c.env.KUBECONFIG || undefined)?.split(":").find((p) => p !== "")
  let path: string | undefined = explicit
  if (path === undefined) path = g.files.has(KUBECONFIG) ? KUBECONFIG : `${home}/.kube/config`
  if (!g.files.has(path)) {
    if (explicit !== undefined) return fail(`error: stat ${path}: no such file or directory\n`)
    return refused("localhost:8080")
  }
  if (!canRead(g, c.user, path)) {
    if (path === KUBECONFIG)
      return fail(
        `WARN[0000] Unable to read ${KUBECONFIG}, please start server with --write-kubeconfig-mode or --write-kubeconfig-group to modify kube config permissions \nerror: error loading config file "${KUBECONFIG}": open ${KUBECONFIG}: permission denied\n`
      )
    return fail(`error: error loading config file "${path}": open ${path}: permission denied\n`)
  }
  let cfg: Record<string, unknown>
  try {
    const y = parseYaml(g.files.get(path) ?? "") as unknown
    cfg = y !== null && typeof y === "object" ? (y as Record<string, unknown>) : {}
  } catch (e) {
    return fail(`error: error loading config file "${path}": yaml: ${(e as Error).message.split("\n")[0]}\n`)
  }
  const named = (key: string, name: string | undefined) =>
    (Array.isArray(cfg[key]) ? (cfg[key] as Array<Record<string, unknown>>) : []).find((e) => e?.name === name)
  const contextName = o.context ?? (typeof cfg["current-context"] === "string" ? cfg["current-context"] : undefined)
  const context = named("contexts", contextName)?.context as Record<string, unknown> | undefined
  if (o.context !== undefined && context === undefined)
    return fail(`error: context was not found for specified context: ${o.context}\n`)
  const cl = named("clusters", context?.cluster as string | undefined)?.cluster as Record<string, unknown> | undefined
  const user = named("users", context?.user as string | undefined)?.user as Record<string, unknown> | undefined
  const server = typeof cl?.server === "string" ? cl.server : undefined
  if (server === undefined) return refused("localhost:8080")
  let u: URL
  try {
    u = new URL(server)
  } catch {
    return fail(`error: ${server} is not a valid URL\n`)
  }
  const hostname = u.hostname.replace(/^\[|\]$/g, "")
  const port = u.port === "" ? "443" : u.port
  const where = `${hostname}:${port}`
  let h: K3sHost | undefined
  if (hostname === "127.0.0.1" || hostname === "localhost" || hostname === "::1") {
    h = sim.host(g)
    if (port !== "6443" || sim.apiState(h) === "down") return refused(where)
  } else {
    const isIp = /^\d+\.\d+\.\d+\.\d+$/.test(hostname)
    const target = sim.findServer(`https://${hostname}:${port}`)
    if (!target.ok) {
      if (!isIp && !sim.knowsHostname(hostname))
        return fail(`Unable to connect to the server: dial tcp: lookup ${hostname} on 127.0.0.53:53: no such host\n`)
      return refused(where)
    }
    h = target.host
  }
  const cluster = h.cluster as K3sCluster
  if (
    cl?.["insecure-skip-tls-verify"] !== true &&
    !decodeB64(cl?.["certificate-authority-data"]).includes(cluster.caHash)
  )
    return fail(
      "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority\n"
    )
  if (!decodeB64(user?.["client-certificate-data"]).includes(cluster.caHash.slice(0, 16)))
    return fail("error: You must be logged in to the server (Unauthorized)\n")
  if (sim.apiState(h) === "no-quorum") return fail("Error from server: etcdserver: request timed out\n")
  return { cluster, server: h }
}

// ------------------------------------------------------------------------------------------ resources

type Kind = "nodes" | "pods" | "secrets" | "poddisruptionbudgets"

const KINDS: Record<string, Kind> = {
  node: "nodes",
  nodes: "nodes",
  no: "nodes",
  pod: "pods",
  pods: "pods",
  po: "pods",
  secret: "secrets",
  secrets: "secrets",
  poddisruptionbudget: "poddisruptionbudgets",
  poddisruptionbudgets: "poddisruptionbudgets",
  pdb: "poddisruptionbudgets"
}

const SINGULAR: Record<Kind, string> = {
  nodes: "node",
  pods: "pod",
  secrets: "secret",
  poddisruptionbudgets: "poddisruptionbudget.policy"
}

/** `TYPE NAME…` or `TYPE/NAME…` → the kind and names. */
const targets = (words: ReadonlyArray<string>): { kind: Kind; names: Array<string> } | { error: string } => {
  const first = words[0]
  if (first === undefined) return { error: "error: You must specify the type of resource to get. " }
  if (first.includes("/")) {
    const names: Array<string> = []
    let kind: Kind | undefined
    for (const w of words) {
      const [t, n] = w.split("/", 2) as [string, string | undefined]
      const k = KINDS[t.toLowerCase()]
      if (k === undefined) return { error: `error: the server doesn't have a resource type "${t}"` }
      if (kind !== undefined && k !== kind) return { error: "error: the simulator takes one resource type at a time" }
      kind = k
      names.push(n ?? "")
    }
    return { kind: kind as Kind, names }
  }
  const kind = KINDS[first.toLowerCase()]
  if (kind === undefined) return { error: `error: the server doesn't have a resource type "${first}"` }
  return { kind, names: words.slice(1) }
}

const iso = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(".000Z", "Z")

const podPhase = (w: Workloads, p: PodRecord, now: number) =>
  p.deletingAt !== undefined
    ? "Terminating"
    : p.node === undefined
      ? "Pending"
      : w.podReady(p, now)
        ? "Running"
        : "ContainerCreating"

const podJson = (w: Workloads, p: PodRecord, now: number) => {
  const ready = w.podReady(p, now)
  const owner =
    p.workload.kind === "Deployment"
      ? { apiVersion: "apps/v1", kind: "ReplicaSet", name: `${p.workload.name}-${p.workload.hash}` }
      : { apiVersion: "apps/v1", kind: "DaemonSet", name: p.workload.name }
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      creationTimestamp: iso(p.createdAt),
      ...(p.deletingAt === undefined ? {} : { deletionGracePeriodSeconds: 30, deletionTimestamp: iso(p.deletingAt) }),
      labels: podLabels(p),
      name: p.name,
      namespace: p.namespace,
      ownerReferences: [{ ...owner, blockOwnerDeletion: true, controller: true, uid: p.workload.hash }],
      uid: p.uid
    },
    spec: {
      containers: [{ image: `${p.workload.name}:simulated`, name: p.workload.name }],
      ...(p.node === undefined ? {} : { nodeName: p.node }),
      ...(p.workload.emptyDir ? { volumes: [{ emptyDir: {}, name: "tmp-dir" }] } : {})
    },
    status: {
      conditions: [
        { status: p.node === undefined ? "False" : "True", type: "PodScheduled" },
        { status: ready ? "True" : "False", type: "Ready" }
      ],
      phase: p.node === undefined ? "Pending" : "Running",
      ...(p.node === undefined ? {} : { podIP: p.ip })
    }
  }
}

const pdbJson = (w: Workloads, wl: Workload, now: number) => {
  const st = w.pdbStatus(wl, now)
  const pdb = wl.pdb
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { creationTimestamp: iso(wl.createdAt), name: pdb?.name, namespace: wl.namespace },
    spec: {
      ...(pdb?.minAvailable === undefined ? {} : { minAvailable: pdb.minAvailable }),
      ...(pdb?.maxUnavailable === undefined ? {} : { maxUnavailable: pdb.maxUnavailable }),
      selector: { matchLabels: wl.labels }
    },
    status: {
      currentHealthy: st?.currentHealthy ?? 0,
      desiredHealthy: st?.desiredHealthy ?? 0,
      disruptionsAllowed: st?.allowed ?? 0,
      expectedPods: st?.expected ?? 0
    }
  }
}

const secretOf = (cluster: K3sCluster, s: SecretRecord) => {
  const owner = cluster.nodes.get(s.name.replace(/\.node-password\.k3s$/, ""))
  return secretJson(s, owner === undefined ? undefined : { name: owner.name, uid: owner.uid })
}

interface Item {
  readonly name: string
  readonly namespace: string | undefined
  readonly json: Record<string, unknown>
  readonly labels: Readonly<Record<string, string>>
  readonly fields: Readonly<Record<string, string>>
}

const items = (sim: K3sSim, cluster: K3sCluster, kind: Kind, now: number): Array<Item> => {
  const w = cluster.workloads
  switch (kind) {
    case "nodes":
      return [...cluster.nodes.values()].map((n) => {
        const json = nodeJson(cluster, n, now, sim.graceRealMs)
        return {
          name: n.name,
          namespace: undefined,
          json,
          labels: (json.metadata as { labels: Record<string, string> }).labels,
          fields: { "metadata.name": n.name, "spec.unschedulable": String(n.unschedulable) }
        }
      })
    case "pods":
      return (w?.list(now) ?? []).map((p) => ({
        name: p.name,
        namespace: p.namespace,
        json: podJson(w as Workloads, p, now),
        labels: podLabels(p),
        fields: {
          "metadata.name": p.name,
          "metadata.namespace": p.namespace,
          "spec.nodeName": p.node ?? "",
          "status.phase": p.node === undefined ? "Pending" : "Running"
        }
      }))
    case "secrets":
      return [...cluster.secrets.values()].map((s) => ({
        name: s.name,
        namespace: "kube-system",
        json: secretOf(cluster, s),
        labels: {},
        fields: { "metadata.name": s.name, "metadata.namespace": "kube-system" }
      }))
    case "poddisruptionbudgets":
      return (w?.workloads ?? [])
        .filter((x) => x.pdb !== undefined)
        .map((x) => ({
          name: x.pdb?.name ?? x.name,
          namespace: x.namespace,
          json: pdbJson(w as Workloads, x, now),
          labels: {},
          fields: { "metadata.name": x.pdb?.name ?? x.name, "metadata.namespace": x.namespace }
        }))
  }
}

const tableOf = (sim: K3sSim, cluster: K3sCluster, kind: Kind, list: ReadonlyArray<Item>, o: Options, now: number) => {
  const wide = o.output === "wide"
  const withNs = o.allNamespaces && kind !== "nodes"
  let rows: Array<Array<string>>
  if (kind === "nodes") {
    const recs = list.map((i) => cluster.nodes.get(i.name)).filter((n): n is NodeRecord => n !== undefined)
    rows = nodeRows(cluster, recs, now, sim.graceRealMs, wide)
  } else if (kind === "pods") {
    const w = cluster.workloads as Workloads
    const head = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    if (wide) head.push("IP", "NODE", "NOMINATED NODE", "READINESS GATES")
    rows = [head]
    for (const i of list) {
      const p = w.pods.get(`${i.namespace}/${i.name}`) as PodRecord
      const row = [p.name, w.podReady(p, now) ? "1/1" : "0/1", podPhase(w, p, now), "0", age(now - p.createdAt)]
      if (wide) row.push(p.node === undefined ? "<none>" : p.ip, p.node ?? "<none>", "<none>", "<none>")
      rows.push(row)
    }
  } else if (kind === "secrets") {
    rows = [
      ["NAME", "TYPE", "DATA", "AGE"],
      ...list.map((i) => [
        i.name,
        "k3s.cattle.io/node-password",
        "1",
        age(now - (cluster.secrets.get(i.name)?.createdAt ?? now))
      ])
    ]
  } else {
    const w = cluster.workloads as Workloads
    rows = [["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE", "ALLOWED DISRUPTIONS", "AGE"]]
    for (const i of list) {
      const wl = w.workloads.find((x) => x.pdb?.name === i.name && x.namespace === i.namespace) as Workload
      rows.push([
        i.name,
        wl.pdb?.minAvailable === undefined ? "N/A" : String(wl.pdb.minAvailable),
        wl.pdb?.maxUnavailable === undefined ? "N/A" : String(wl.pdb.maxUnavailable),
        String(w.pdbStatus(wl, now)?.allowed ?? 0),
        age(now - wl.createdAt)
      ])
    }
  }
  if (withNs) rows = rows.map((r, idx) => [idx === 0 ? "NAMESPACE" : (list[idx - 1]?.namespace ?? ""), ...r])
  return table(rows, !o.noHeaders)
}

/** Prints objects in the requested output format (`one`: a single named object, not a List). */
const print = (
  sim: K3sSim,
  cluster: K3sCluster,
  kind: Kind,
  list: ReadonlyArray<Item>,
  o: Options,
  now: number,
  one: boolean
): GuestCommandResult => {
  const out = o.output
  const data = one && list.length === 1 ? (list[0] as Item).json : listJson(list.map((i) => i.json))
  if (out === "json") return ok(kubectlJson(data))
  if (out === "yaml") return ok(stringifyYaml(JSON.parse(kubectlJson(data)), { lineWidth: 0 }))
  if (out === "name") return ok(list.map((i) => `${SINGULAR[kind]}/${i.name}\n`).join(""))
  if (out?.startsWith("jsonpath=") === true || out?.startsWith("jsonpath-as-json=") === true) {
    const tpl = out.slice(out.indexOf("=") + 1)
    try {
      return ok(jsonPath(tpl, data))
    } catch (e) {
      const err = e instanceof JsonPathError ? e.message : String(e)
      return fail(`error: error parsing jsonpath ${tpl}, ${err}\n`)
    }
  }
  if (out !== undefined && out !== "wide")
    return fail(
      `error: unable to match a printer suitable for the output format "${out}", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml\n`
    )
  return ok(tableOf(sim, cluster, kind, list, o, now))
}

const filterItems = (
  list: ReadonlyArray<Item>,
  selector: LabelSelector,
  fields: ReadonlyArray<{ path: string; eq: boolean; value: string }>
) =>
  list.filter(
    (i) => matchesSelector(selector, i.labels) && fields.every((f) => (i.fields[f.path] === f.value) === f.eq)
  )

const notFound = (kind: Kind, name: string) => {
  const plural = kind === "poddisruptionbudgets" ? "poddisruptionbudgets.policy" : kind
  return `Error from server (NotFound): ${plural} "${name}" not found\n`
}

// ------------------------------------------------------------------------------------------ verbs

const get = (sim: K3sSim, conn: Connection, o: Options, kind: Kind, names: ReadonlyArray<string>) => {
  const { cluster } = conn
  const now = sim.now()
  const namespaced = kind !== "nodes"
  const ns = o.namespace ?? "default"
  const sel = parseSelector(o.selector ?? "")
  if ("error" in sel) return fail(`error: ${sel.error}\n`)
  const fsel = parseFieldSelector(o.fieldSelector ?? "")
  if ("error" in fsel) return fail(`Error from server (BadRequest): ${fsel.error}\n`)
  let list = items(sim, cluster, kind, now).filter((i) => !namespaced || o.allNamespaces || i.namespace === ns)
  if (names.length > 0) {
    if (o.selector !== undefined) return fail("error: name cannot be provided when a selector is specified\n")
    const found: Array<Item> = []
    let err = ""
    for (const n of names) {
      const i = list.find((x) => x.name === n)
      if (i === undefined) {
        if (!o.ignoreNotFound) err += notFound(kind, n)
      } else found.push(i)
    }
    const printed = found.length === 0 ? ok() : print(sim, cluster, kind, found, o, now, names.length === 1)
    return err === "" ? printed : fail(err, 1, printed.stdout)
  }
  list = filterItems(list, sel, fsel)
  if (list.length === 0 && (o.output === undefined || o.output === "wide"))
    return ok("", namespaced && !o.allNamespaces ? `No resources found in ${ns} namespace.\n` : "No resources found\n")
  return print(sim, cluster, kind, list, o, now, false)
}

/**
 * Waits until `done` or the deadline, as kubectl's watch does: it re-checks when the k3s world changes (`touch`) and
 * at `due`, the next time what it waits for may come true on its own (a Node's Ready, a pod's termination), never on
 * a polling step. Each check reads the clock once and gives that reading to both `done` and `due`: with a reading
 * each, a moment that comes due between the two (not yet reached for `done`, already past for `due`) would be
 * missed, and the watch would sleep until a change or its deadline.
 */
const until = async (
  sim: K3sSim,
  deadline: number,
  done: (now: number) => boolean,
  due: (now: number) => number | undefined = () => undefined
): Promise<boolean> => {
  for (;;) {
    const now = sim.now()
    if (done(now)) return true
    const left = deadline - Date.now()
    if (left <= 0 || sim.isStopped()) return false
    const at = due(now)
    await sim.nextChange(at !== undefined && at > now ? Math.min(left, at - now) : left)
  }
}

const WEEK = 7 * 24 * 3_600_000

const del = async (sim: K3sSim, conn: Connection, o: Options, kind: Kind, names: ReadonlyArray<string>) => {
  const { cluster } = conn
  if (names.length === 0) return fail("error: resource(s) were provided, but no name was specified\n")
  if (kind !== "nodes" && kind !== "secrets") return fail(`error: the simulator does not delete ${kind}\n`)
  const ns = o.namespace ?? "default"
  let out = ""
  let err = ""
  // kubectl waits for the object it deleted (its UID): a new Node of the same name does not keep it waiting
  const waiting: Array<{ name: string; uid: string }> = []
  for (const n of names) {
    const uid = cluster.nodes.get(n)?.uid ?? ""
    const done = kind === "nodes" ? sim.deleteNode(cluster, n) : ns === "kube-system" && sim.deleteSecret(cluster, n)
    if (done) {
      out += `${SINGULAR[kind]} "${n}" deleted\n`
      if (kind === "nodes") waiting.push({ name: n, uid })
    } else if (!o.ignoreNotFound) err += notFound(kind, n)
  }
  // --wait (default true): until the objects are gone (their finalizers ran)
  if (o.wait && waiting.length > 0) {
    const deadline = Date.now() + (o.timeoutMs === undefined || o.timeoutMs === 0 ? WEEK : o.timeoutMs)
    for (const n of waiting) {
      const gone = await until(sim, deadline, () => cluster.nodes.get(n.name)?.uid !== n.uid)
      if (!gone) err += `error: timed out waiting for the condition on nodes/${n.name}\n`
    }
  }
  return err === "" ? ok(out) : fail(err, 1, out)
}

const cordon = (sim: K3sSim, conn: Connection, names: ReadonlyArray<string>, value: boolean) => {
  if (names.length === 0)
    return fail(
      `error: USAGE: ${value ? "cordon" : "uncordon"} NODE [flags]\nSee 'kubectl ${value ? "cordon" : "uncordon"} -h' for help and examples\n`
    )
  let out = ""
  let err = ""
  for (const n of names) {
    const r = sim.setUnschedulable(conn.cluster, n, value)
    if (r === undefined) err += notFound("nodes", n)
    else out += `node/${n} ${r ? "" : "already "}${value ? "cordoned" : "uncordoned"}\n`
  }
  return err === "" ? ok(out) : fail(err, 1, out)
}

/**
 * `TYPE NAME pair…` / `TYPE/NAME pair…` of `kubectl label` and `kubectl taint` (kubectl's `GetResourcesAndPairs`):
 * the node, and the words from the first pair on.
 */
const nodeAndPairs = (
  verb: string,
  words: ReadonlyArray<string>,
  isPair: (w: string) => boolean
): { readonly node: string; readonly pairs: ReadonlyArray<string> } | GuestCommandResult => {
  const first = words.findIndex(isPair)
  const resources = first < 0 ? words : words.slice(0, first)
  const pairs = first < 0 ? [] : words.slice(first)
  const [type, name, ...more] = resources.length === 1 ? (resources[0] as string).split("/") : resources
  if (type === undefined || name === undefined || name === "")
    return fail("error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n")
  if (more.length > 0 || KINDS[type.toLowerCase()] !== "nodes")
    return fail(`error: the simulator answers \`kubectl ${verb}\` for one node only\n`)
  const bad = pairs.find((w) => !isPair(w))
  if (bad !== undefined) return fail(`error: all resources must be specified before ${verb} changes: ${bad}\n`)
  return { node: name, pairs }
}

/** `kubectl label node NAME k=v k2-` (kubectl's `RunLabel`: `--overwrite` to change a value). */
const label = (sim: K3sSim, conn: Connection, o: Options, words: ReadonlyArray<string>) => {
  const parsed = nodeAndPairs("label", words, (w) => w.includes("=") || w.endsWith("-"))
  if (!("node" in parsed)) return parsed
  const set: Record<string, string> = {}
  const remove: Array<string> = []
  for (const spec of parsed.pairs) {
    if (spec.includes("=")) {
      const parts = spec.split("=")
      if (parts.length !== 2) return fail(`error: invalid label spec: ${spec}\n`)
      set[parts[0] as string] = parts[1] as string
    } else remove.push(spec.slice(0, -1))
  }
  if (remove.some((k) => k in set)) return fail("error: can not both modify and remove a label in the same command\n")
  if (Object.keys(set).length === 0 && remove.length === 0)
    return fail("error: at least one label update is required\n")
  const node = conn.cluster.nodes.get(parsed.node)
  if (node === undefined) return fail(notFound("nodes", parsed.node))
  const before = { ...node.labels }
  if (!o.overwrite) {
    const taken = Object.entries(set).filter(([k, v]) => before[k] !== undefined && before[k] !== v)
    if (taken.length > 0)
      return fail(
        `error: ${taken.map(([k]) => `'${k}' already has a value (${before[k]}), and --overwrite is false`).join(", ")}\n`
      )
  }
  const out = remove.filter((k) => !(k in before)).map((k) => `label "${k}" not found.\n`)
  sim.setNodeLabels(conn.cluster, parsed.node, set, remove)
  const after = conn.cluster.nodes.get(parsed.node)?.labels ?? {}
  const unlabeled = Object.keys(before).some((k) => !(k in after))
  const labeled = Object.entries(after).some(([k, v]) => before[k] !== v)
  const msg = labeled && unlabeled ? "label(s) changed" : labeled ? "labeled" : unlabeled ? "unlabeled" : "not labeled"
  return ok(`${out.join("")}node/${parsed.node} ${msg}\n`)
}

const showTaint = (t: { readonly key: string; readonly value?: string | undefined; readonly effect?: string }) =>
  `${t.key}${t.value === undefined ? "" : `=${t.value}`}${t.effect === undefined ? "" : `:${t.effect}`}`

/** `kubectl taint node NAME k=v:Effect k2:Effect-` (kubectl's `reorganizeTaints`: `--overwrite` to change one). */
const taint = (sim: K3sSim, conn: Connection, o: Options, words: ReadonlyArray<string>) => {
  const parsed = nodeAndPairs("taint", words, (w) => w.includes("=") || w.includes(":") || w.endsWith("-"))
  if (!("node" in parsed)) return parsed
  const add: Array<NodeTaint> = []
  const remove: Array<{ readonly key: string; readonly effect?: string }> = []
  for (const spec of parsed.pairs) {
    if (spec.endsWith("-")) {
      const [key, effect] = spec.slice(0, -1).split(":") as [string, string | undefined]
      if (effect !== undefined && !TAINT_EFFECTS.includes(effect))
        return fail(`error: invalid taint effect: ${effect}, unsupported taint effect\n`)
      remove.push(effect === undefined ? { key } : { key, effect })
      continue
    }
    const t = parseTaint(spec)
    if (t === undefined) return fail(`error: invalid taint spec: ${spec}\n`)
    add.push(t)
  }
  const node = conn.cluster.nodes.get(parsed.node)
  if (node === undefined) return fail(notFound("nodes", parsed.node))
  const same = (a: NodeTaint, b: { readonly key: string; readonly effect?: string }) =>
    a.key === b.key && (b.effect === undefined || a.effect === b.effect)
  if (!o.overwrite) {
    const clash = add.filter((t) => node.taints.some((old) => same(old, t)))
    if (clash.length > 0)
      return fail(
        `error: node ${parsed.node} already has ${clash.map((t) => t.key).join(",")} taint(s) with same effect(s) and --overwrite is false\n`
      )
  }
  let taints: Array<NodeTaint> = [...add, ...node.taints.filter((old) => !add.some((t) => same(old, t)))]
  const added = taints.length !== node.taints.length
  const errors: Array<string> = []
  let deleted = false
  for (const r of remove) {
    const kept = taints.filter((t) => !same(t, r))
    deleted = kept.length !== taints.length
    if (!deleted) errors.push(`taint "${showTaint(r)}" not found`)
    taints = kept
  }
  if (errors.length > 0) return fail(`error: ${errors.length === 1 ? errors[0] : `[${errors.join(", ")}]`}\n`)
  sim.setNodeTaints(conn.cluster, parsed.node, taints)
  const op = (added && deleted) || o.overwrite ? "modified" : added ? "tainted" : "untainted"
  return ok(`node/${parsed.node} ${op}\n`)
}

/** One condition of `kubectl wait --for=…` on a node. */
type WaitCondition =
  | { readonly _tag: "delete" }
  | { readonly _tag: "condition"; readonly type: string; readonly value: string }
  | { readonly _tag: "jsonpath"; readonly template: string; readonly value: string | undefined }

const parseWaitFor = (f: string): WaitCondition | string => {
  const lower = f.toLowerCase()
  if (lower === "delete") return { _tag: "delete" }
  if (lower.startsWith("condition=")) {
    const rest = f.slice(10)
    const eq = rest.indexOf("=")
    return eq < 0
      ? { _tag: "condition", type: rest, value: "true" }
      : { _tag: "condition", type: rest.slice(0, eq), value: rest.slice(eq + 1) }
  }
  if (lower.startsWith("jsonpath=")) {
    let rest = f.slice(9)
    if (!rest.startsWith("{")) {
      const eq = rest.lastIndexOf("=")
      rest = eq < 0 ? `{${rest}}` : `{${rest.slice(0, eq)}}${rest.slice(eq)}`
    }
    const close = rest.indexOf("}")
    if (close < 0)
      return "jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 or --for=jsonpath='{.status.readyReplicas}'"
    const template = rest.slice(0, close + 1)
    const tail = rest.slice(close + 1)
    if (tail !== "" && !tail.startsWith("="))
      return "jsonpath wait format must be --for=jsonpath='{.status.readyReplicas}'=3 or --for=jsonpath='{.status.readyReplicas}'"
    if (template === "{}") return "jsonpath expression cannot be empty"
    return { _tag: "jsonpath", template, value: tail === "" ? undefined : tail.slice(1) }
  }
  return `unrecognized condition: "${f}"`
}

const wait = async (sim: K3sSim, conn: Connection, o: Options, kind: Kind, names: ReadonlyArray<string>) => {
  const { cluster } = conn
  if (kind !== "nodes") return fail("error: the simulator waits on nodes only\n")
  if (o.waitFor.length === 0) return fail("error: --for must be specified\n")
  const conds: Array<WaitCondition> = []
  for (const f of o.waitFor) {
    const p = parseWaitFor(f)
    if (typeof p === "string") return fail(`error: ${p}\n`)
    conds.push(p)
  }
  const forDelete = conds.some((x) => x._tag === "delete")
  let targetNames = [...names]
  if (targetNames.length === 0) {
    const sel = parseSelector(o.selector ?? "")
    if ("error" in sel) return fail(`error: ${sel.error}\n`)
    if (!o.all && o.selector === undefined) return fail("error: resource(s) were provided, but no name was specified\n")
    targetNames = items(sim, cluster, "nodes", sim.now())
      .filter((i) => matchesSelector(sel, i.labels))
      .map((i) => i.name)
    if (targetNames.length === 0 && !forDelete) return fail("error: no matching resources found\n")
  }
  const deadline = Date.now() + (o.timeoutMs ?? 30_000)
  let out = ""
  for (const name of targetNames) {
    if (!cluster.nodes.has(name)) {
      if (forDelete) continue
      return fail(notFound("nodes", name), 1, out)
    }
    const uid = cluster.nodes.get(name)?.uid
    const met = (now: number): boolean | "gone" => {
      const n = cluster.nodes.get(name)
      // --for=delete: the object that was there (by UID) is gone
      if (n === undefined || (forDelete && n.uid !== uid)) return forDelete ? true : "gone"
      return conds.every((cond) => {
        if (cond._tag === "delete") return false
        if (cond._tag === "condition") {
          if (cond.type.toLowerCase() !== "ready") return false
          return nodeReady(n, now, sim.graceRealMs).toLowerCase() === cond.value.toLowerCase()
        }
        let got: string
        try {
          got = jsonPath(cond.template, nodeJson(cluster, n, now, sim.graceRealMs))
        } catch {
          return false
        }
        return cond.value === undefined ? got !== "" : got === cond.value
      })
    }
    const seen: { state: boolean | "gone" } = { state: false }
    const done = await until(
      sim,
      deadline,
      (now) => {
        seen.state = met(now)
        return seen.state !== false
      },
      // a Node turns Ready at readyAt, and Unknown once its grace period after it was lost has passed
      (now) => {
        const n = cluster.nodes.get(name)
        if (n === undefined) return undefined
        const lost = n.lostAt === undefined ? undefined : n.lostAt + sim.graceRealMs
        return [n.readyAt, lost].filter((t): t is number => t !== undefined && t > now).sort((a, b) => a - b)[0]
      }
    )
    if (seen.state === "gone") return fail(notFound("nodes", name), 1, out)
    if (!done) return fail(`error: timed out waiting for the condition on nodes/${name}\n`, 1, out)
    out += `node/${name} condition met\n`
  }
  return ok(out)
}

/** The error list of an aggregate (`k8s.io/apimachinery/pkg/util/errors`): one message, or `[a, b]`. */
const aggregate = (errs: ReadonlyArray<string>) => (errs.length === 1 ? (errs[0] as string) : `[${errs.join(", ")}]`)

const drain = async (
  c: GuestCommandContext,
  sim: K3sSim,
  conn: Connection,
  o: Options,
  names: ReadonlyArray<string>
) => {
  const { cluster } = conn
  const name = names[0]
  if (name === undefined || names.length > 1)
    return fail("error: USAGE: drain NODE [flags]\nSee 'kubectl drain -h' for help and examples\n")
  if (!cluster.nodes.has(name)) return fail(notFound("nodes", name))
  const w = cluster.workloads
  let out = `node/${name} ${sim.setUnschedulable(cluster, name, true) === true ? "" : "already "}cordoned\n`
  let err = ""
  const vmid = sim.vmidOfNode(cluster, name)
  sim.event("drain-start", name, vmid)
  const podSel = parseSelector(o.podSelector ?? "")
  if ("error" in podSel) return fail("error: --pod-selector=<pod_selector> must be a valid label selector\n")
  const onNode = (w?.list(sim.now()) ?? []).filter(
    (p) => p.node === name && p.deletingAt === undefined && matchesSelector(podSel, podLabels(p))
  )
  // kubectl's pod filters: DaemonSet pods, then pods with local storage
  const fatal = new Map<string, Array<string>>()
  const warnings = new Map<string, Array<string>>()
  const toEvict: Array<PodRecord> = []
  const note = (m: Map<string, Array<string>>, msg: string, p: PodRecord) =>
    m.set(msg, [...(m.get(msg) ?? []), `${p.namespace}/${p.name}`])
  for (const p of onNode) {
    if (p.workload.kind === "DaemonSet") {
      if (o.ignoreDaemonsets) note(warnings, "ignoring DaemonSet-managed Pods", p)
      else note(fatal, "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)", p)
      continue
    }
    if (p.workload.emptyDir) {
      if (o.deleteEmptyDirData) note(warnings, "deleting Pods with local storage", p)
      else {
        note(fatal, "Pods with local storage (use --delete-emptydir-data to override)", p)
        continue
      }
    }
    toEvict.push(p)
  }
  const failDrain = (errs: ReadonlyArray<string>) => {
    const agg = aggregate(errs)
    err += `error: unable to drain node "${name}" due to error: ${agg}, continuing command...\nThere are pending nodes to be drained:\n ${name}\nerror: ${agg}\n`
    sim.event("drain-failed", name, vmid, agg)
    return fail(err, 1, out)
  }
  // kubectl walks a Go map here (any order); the simulator sorts by message
  const sorted = (m: Map<string, Array<string>>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  if (fatal.size > 0) return failDrain(sorted(fatal).map(([msg, pods]) => `cannot delete ${msg}: ${pods.join(", ")}`))
  if (warnings.size > 0)
    err += `Warning: ${sorted(warnings)
      .map(([msg, pods]) => `${msg}: ${pods.join(", ")}`)
      .join("; ")}\n`
  const timeoutMs = o.timeoutMs === undefined || o.timeoutMs === 0 ? undefined : o.timeoutMs
  const deadline = Date.now() + (timeoutMs ?? WEEK)
  const globalTimeout = goDuration(timeoutMs ?? 9_223_372_036_854)
  const evictOne = async (p: PodRecord): Promise<string | undefined> => {
    for (;;) {
      out += `evicting pod ${p.namespace}/${p.name}\n`
      if (Date.now() >= deadline || sim.isStopped())
        return `error when evicting pods/"${p.name}" -n "${p.namespace}": global timeout reached: ${globalTimeout}`
      const r = o.disableEviction
        ? { _tag: "evicted" as const }
        : (w as Workloads).evict(p.namespace, p.name, sim.now())
      if (r._tag === "not-found") return undefined
      if (r._tag === "evicted") break
      err += `error when evicting pods/"${p.name}" -n "${p.namespace}" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n`
      // kubectl's EvictErrorRetryDelay (5 s, on the simulation's time scale)
      const until5 = Date.now() + Math.max(5, sim.clock.scaled(5000))
      while (Date.now() < until5 && Date.now() < deadline && !sim.isStopped())
        await c.sleep(Math.max(1, Math.min(until5, deadline) - Date.now()))
    }
    sim.event("pod-evicted", `${p.namespace}/${p.name}`, vmid, name)
    const gone = await until(
      sim,
      deadline,
      (now) => !(w as Workloads).list(now).includes(p),
      () => p.goneAt
    )
    if (!gone)
      return `error when waiting for pod "${p.name}" in namespace "${p.namespace}" to terminate: global timeout reached: ${globalTimeout}`
    out += `pod/${p.name} evicted\n`
    return undefined
  }
  const results = await Promise.all(toEvict.map(evictOne))
  const errs = results.filter((x): x is string => x !== undefined)
  if (errs.length > 0) {
    const pending = (w?.list(sim.now()) ?? []).filter((p) => p.node === name && p.workload.kind !== "DaemonSet")
    if (pending.length > 0)
      err += `There are pending pods in node "${name}" when an error occurred: ${aggregate(errs)}\n${pending.map((p) => `pod/${p.name}\n`).join("")}`
    return failDrain(errs)
  }
  out += `node/${name} drained\n`
  sim.event("drain-finish", name, vmid)
  return ok(out, err)
}

/**
 * Whether a `kubectl patch` clears `metadata.finalizers` and nothing else: `{"metadata":{"finalizers":null}}` (or
 * `[]`) as a strategic or merge patch, `[{"op":"remove","path":"/metadata/finalizers"}]` as a JSON patch.
 */
const clearsFinalizers = (patch: string, type: string): boolean => {
  let parsed: unknown
  try {
    parsed = JSON.parse(patch)
  } catch {
    return false
  }
  if (type === "json")
    return (
      Array.isArray(parsed) &&
      parsed.length === 1 &&
      JSON.stringify(parsed[0]) === JSON.stringify({ op: "remove", path: "/metadata/finalizers" })
    )
  const json = JSON.stringify(parsed)
  return json === '{"metadata":{"finalizers":null}}' || json === '{"metadata":{"finalizers":[]}}'
}

/**
 * `kubectl patch node NAME -p PATCH [--type strategic|merge|json]`: the simulator applies one patch, the one that
 * clears a Node's finalizers (`K3sSim.dropFinalizers`); any other is refused as not simulated.
 */
const patch = (sim: K3sSim, conn: Connection, o: Options, words: ReadonlyArray<string>) => {
  const [type, name, ...more] = words.length === 1 ? (words[0] as string).split("/") : words
  if (type === undefined || name === undefined || name === "" || more.length > 0)
    return fail("error: one or more resources must be specified as <resource> <name> or <resource>/<name>\n")
  if (KINDS[type.toLowerCase()] !== "nodes")
    return fail("error: the simulator answers `kubectl patch` for nodes only\n")
  if (o.patch === undefined)
    return fail("error: must specify --patch or --patch-file containing the contents of the patch\n")
  const patchType = o.patchType ?? "strategic"
  if (!["strategic", "merge", "json"].includes(patchType))
    return fail(`error: --type must be one of [json merge strategic], not "${patchType}"\n`)
  if (!clearsFinalizers(o.patch, patchType))
    return fail(`error: the simulator applies only the patch that clears a node's finalizers, not ${o.patch}\n`)
  const done = sim.dropFinalizers(conn.cluster, name)
  if (done === undefined) return fail(notFound("nodes", name))
  return ok(`node/${name} patched\n`)
}

/** `kubectl …` / `k3s kubectl …` as user `c.user` in the guest. */
export const kubectl = async (
  sim: K3sSim,
  c: GuestCommandContext,
  argv: ReadonlyArray<string>
): Promise<GuestCommandResult> => {
  const o = parseOptions(argv)
  if ("error" in o) return fail(`error: ${o.error}\nSee 'kubectl --help' for usage.\n`)
  const [verb, ...rest] = o.words
  if (verb === undefined) return fail("kubectl controls the Kubernetes cluster manager.\n")
  const known = ["get", "delete", "wait", "cordon", "uncordon", "drain", "label", "taint", "patch"]
  if (!known.includes(verb)) return fail(`error: the simulator does not answer \`kubectl ${argv.join(" ")}\`\n`)
  const conn = connect(sim, c, o)
  if (!("cluster" in conn)) return conn
  if (verb === "cordon" || verb === "uncordon") return cordon(sim, conn, rest, verb === "cordon")
  if (verb === "drain") return drain(c, sim, conn, o, rest)
  if (verb === "label") return label(sim, conn, o, rest)
  if (verb === "taint") return taint(sim, conn, o, rest)
  if (verb === "patch") return patch(sim, conn, o, rest)
  const t = targets(rest)
  if ("error" in t) return fail(`${t.error}\n`)
  if (verb === "get") return get(sim, conn, o, t.kind, t.names)
  if (verb === "delete") return del(sim, conn, o, t.kind, t.names)
  return wait(sim, conn, o, t.kind, t.names)
}
