import {
  type ClusterFacts,
  type ClusterNode,
  joiningMembersOf,
  memberIdHex,
  memberJoining,
  nodeOfMember,
  orphanMembersOf,
  staleMemberRefusal
} from "@homelab/k3s-join"
import type { Finding } from "./Action.js"
import type { ServerUnit } from "./Observed.js"

/** The etcd client certificates k3s keeps on every server, for an etcdctl of the user's own (k3s ships none). */
const ETCD_TLS = "/var/lib/rancher/k3s/server/tls/etcd"

/** The `etcdctl member remove` of the member with ID `hexId` (as `etcdctl member list` shows it), on a server. */
export const etcdctlRemove = (hexId: string): string =>
  `sudo etcdctl --endpoints=https://127.0.0.1:2379 --cacert=${ETCD_TLS}/server-ca.crt --cert=${ETCD_TLS}/client.crt --key=${ETCD_TLS}/client.key member remove ${hexId}`

/**
 * What to do about an etcd member no Node owns (ID `hexId`), for a finding's hint or a refused join's: `server` is
 * where to run etcdctl.
 */
export const staleMemberHint = (vm: string, hexId: string, server: string): string =>
  `if k3s still runs on an old ${vm} somewhere, stop it there first (\`sudo systemctl stop k3s\`); then remove the member on ${server} with an etcdctl of your own (k3s ships none): \`${etcdctlRemove(hexId)}\`, and run apply again`

/**
 * What to do about an etcd member of VM `vm` (VMID `vmid`) that no Node owns (ID `hexId`) when a teardown was to remove
 * the VM (`homelab destroy`, `apply --prune`: `command`): the VM stays as it is until the member is gone (destroyed
 * first, it would leave that member in etcd for good, a vote that never comes back); once the member is removed on
 * `server`, the same command removes the VM.
 */
export const staleMemberTeardownHint = (
  vm: string,
  vmid: number,
  hexId: string,
  server: string,
  command: string
): string =>
  `VM ${vmid} ${vm} stays as it is until that member is gone: remove the member on ${server} with an etcdctl of your own (k3s ships none): \`${etcdctlRemove(hexId)}\` (a k3s server on ${vm} that runs as that member stops then, as it would with the VM), and run the same \`${command}\` again, which then removes the VM`

/** A server VM of ours as the stale-member checks see it. */
export interface ServerVm {
  readonly node: string
  readonly vm: string
  readonly vmid?: number | undefined
  /** its IP, when known: a member registered with it as its peer address counts as its own */
  readonly ip?: string | undefined
  /** the member its k3s added for itself since it started, as its journal shows (observe's `joiningMembers`) */
  readonly joining?: { readonly member: string; readonly line: string } | undefined
  /**
   * `false` when no machine of that name runs now (the VM is to be made, or made again): then no learner of its name can
   * be a join going on (a join cut short by the VM's end left it), and a learner counts as stale too
   */
  readonly runs?: boolean | undefined
  /**
   * Its k3s unit as observe read it (state and journal), or why it could not be read; undefined when not asked. A
   * learner of its name is a join going on only while its k3s runs and its journal since it started shows that join,
   * or cannot tell (`notJoiningAs`).
   */
  readonly unit?: ServerUnit | undefined
}

/**
 * Why no join goes on as a learner of running server VM `vm` that its k3s did not add for itself since it started
 * (`vm.joining`), when its unit as read says so: its k3s does not run (`inactive`, `failed`, not installed: a join cut
 * short by `systemctl stop k3s` or `k3s-uninstall.sh`, an install that ended early), or its journal since that start is
 * all there and shows no join as that member (a learner of an earlier attempt, under another `<host>-<8 hex>` name).
 * Undefined when it may be joining as it: not read, or a journal that does not show which member it joins as.
 */
const notJoiningAs = (vm: ServerVm): string | undefined => {
  const unit = vm.unit
  if (unit === undefined || "error" in unit) return undefined
  if (unit.state !== "active" && unit.state !== "activating")
    return `k3s on ${vm.vm} is not running (its unit is ${unit.state})`
  return unit.journalComplete
    ? `its journal since k3s on ${vm.vm} last started shows no join as that member`
    : undefined
}

/**
 * The finding that holds back the join of server VM `vm` (at `ip`, when known) while etcd lists a member of its name,
 * or of its IP, that no Node owns and that is no learner (k3s.md §5.3): the join would fail with `duplicate node name found` and its k3s
 * restart forever, and homelab can remove a member only through its Node. A member whose Node is still there is not
 * this: the join removes that Node (and with it the member) first. Undefined when there is no such member, or the
 * members were not read (k3s-join's own check refuses the install then). A learner of its name or IP, or the member
 * the VM's own k3s added for itself since it started (its journal: `vm.joining`), is a join going on right now
 * (`joiningMemberFinding`): deferred, with no etcdctl; unless no machine of that name runs (`vm.runs` false: the VM is
 * to be made), when a learner is what a join cut short left, and stale like the others; or the VM's k3s as observe read
 * it (`vm.unit`) is not joining as that learner (`notJoiningAs`: not running, or a journal since its start that shows
 * no such join), when it is stale too and the finding says why.
 */
export const staleMemberFinding = (
  facts: ClusterFacts | undefined,
  vm: ServerVm,
  server: string
): Finding | undefined => {
  if (facts === undefined) return undefined
  // its k3s stopped during its join (`systemctl stop k3s`): its learner stays, its data dir is that member's, and the
  // join (the next start of its k3s) carries on as it: neither stale nor a join going on that homelab must wait for
  const stopped = stoppedLearnerOf(facts, vm)
  if (stopped !== undefined)
    return staleMemberFinding({ ...facts, members: facts.members.filter((m) => m.name !== stopped) }, vm, server)
  const notJoining = vm.runs === false ? undefined : notJoiningAs(vm)
  const withoutNode =
    vm.runs === false || notJoining !== undefined
      ? [...orphanMembersOf(facts, vm.vm, vm.ip), ...joiningMembersOf(facts, vm.vm, vm.ip)]
      : orphanMembersOf(facts, vm.vm, vm.ip)
  const stale = withoutNode.filter((m) => m.name !== vm.joining?.member)
  const member = stale[0]
  if (member === undefined) return vm.runs === false ? undefined : joiningMemberFinding(facts, vm)
  const learners = notJoining === undefined ? [] : stale.filter((m) => m.isLearner)
  const why =
    learners.length === 0
      ? ""
      : `; ${learners.map((m) => m.name).join(", ")} ${learners.length === 1 ? "is a learner" : "are learners"}, but no join goes on as ${learners.length === 1 ? "it" : "them"}: ${notJoining}`
  return {
    code: "k3s.stale-member",
    effect: "blocked",
    layer: "k3s",
    node: vm.node,
    vm: vm.vm,
    vmid: vm.vmid,
    // k3s-join's words for the refusal of that join (`StaleEtcdMember`), so that plan and apply say the same
    message: `not joining k3s server ${vm.vm}: ${staleMemberRefusal(
      vm.vm,
      stale.map((m) => ({ name: m.name, id: memberIdHex(m.id), peerURL: m.peerURL }))
    )}${why}`,
    hint: `${staleMemberHint(vm.vm, memberIdHex(member.id), server)}${stale.every((m) => m.isLearner) ? learnerEvictionHint(vm.vm, stale) : ""}`
  }
}

/**
 * The learner of running server VM `vm` that its k3s added before it was stopped: its unit does not run and its etcd
 * data dir is of that learner (`ServerUnit.member`). Stopping k3s removes nothing from etcd; the next start of its k3s
 * carries on as that member (k3s pkg/etcd `Start`: `Starting etcd for existing cluster member`), so the join restarts
 * it rather than meeting a stale member.
 */
const stoppedLearnerOf = (facts: ClusterFacts, vm: ServerVm): string | undefined => {
  const unit = vm.unit
  if (vm.runs === false || unit === undefined || "error" in unit || unit.member === undefined) return undefined
  if (unit.state === "active" || unit.state === "activating") return undefined
  const member = unit.member
  return joiningMembersOf(facts, vm.vm, vm.ip).some((m) => m.name === member) ? member : undefined
}

/**
 * The other way out of stale learners (`learners`, of server VM `vm`): k3s on the etcd leader removes a learner whose
 * raft index has not moved for 5 minutes by itself (k3s pkg/etcd `learnerMaxStallTime`, checked every 15 s), as a
 * learner whose etcd is gone never moves it again; the next apply then joins `vm`.
 */
const learnerEvictionHint = (
  vm: string,
  learners: ReadonlyArray<{ readonly name: string }>,
  then = `the next apply joins ${vm} then`
): string =>
  `; or wait: k3s on the etcd leader removes a learner that has made no progress for 5 minutes by itself (its journal says \`Removed learner ${learners.map((m) => m.name).join(", ")} from etcd cluster\`), and ${then}`

/**
 * What to do about VM `vm` while its etcd member joins (a learner, its Node not registered yet): nothing, but wait.
 */
export const joiningMemberHint = (vm: string): string =>
  `nothing to remove: run homelab again once ${vm}'s Node is Ready (\`sudo k3s kubectl get node ${vm}\` on a Ready server)`

/**
 * The finding for server VM `vm` (at `ip`, when known) while etcd lists a learner of its name, or of its IP, that no
 * Node owns: k3s on it is joining right now (k3s.md §3.5: the member is added as a learner before the Node registers).
 * Or a member no Node owns that the VM's own k3s added for itself since it started (`vm.joining`, from its journal):
 * promoted already, its Node not registered yet. Not stale, never to be removed with etcdctl; nothing is done to the
 * VM this run, and the next run finds its Node. Undefined when there is no such member.
 */
export const joiningMemberFinding = (
  facts: ClusterFacts,
  vm: ServerVm,
  context = "homelab does nothing to it this run"
): Finding | undefined => {
  const learners = joiningMembersOf(facts, vm.vm, vm.ip)
  // the member its k3s added for itself since it started, a voter already (promoted, its Node not registered yet)
  const own = facts.members.filter(
    (m) => !m.isLearner && m.name === vm.joining?.member && nodeOfMember(facts, m) === undefined
  )
  if (learners.length === 0 && own.length === 0) return undefined
  // not read, or not telling: what it is said on, not guessed
  const unread =
    vm.unit === undefined
      ? ""
      : "error" in vm.unit
        ? ` (its k3s could not be read: ${vm.unit.error}; homelab cannot tell whether that join still goes on)`
        : vm.unit.journalComplete
          ? ""
          : ` (its journal since k3s last started does not show which member it joins as)`
  const words = [
    ...(learners.length > 0 ? [`${memberJoining(vm.vm, learners)}${unread}`] : []),
    ...own.map(
      (m) =>
        `${vm.vm} is joining etcd right now: its k3s added the member ${m.name} (ID ${memberIdHex(m.id)}${m.peerURL === undefined ? "" : `, peer ${m.peerURL}`}) for itself since it started (its journal: ${vm.joining?.line}), and its Node registers once its k3s is up; it is not stale (do not remove it)`
    )
  ]
  return {
    code: "k3s.member-joining",
    effect: "deferred",
    layer: "k3s",
    node: vm.node,
    vm: vm.vm,
    vmid: vm.vmid,
    message: `${words.join("; ")}; ${context}`,
    hint: joiningMemberHint(vm.vm)
  }
}

/**
 * Whether VM `vm` of ours, which the cluster's `nodes` show without a k3s Node, may still be an etcd member that no Node
 * owns (its Node force-deleted), so that its teardown must first know the members (`removal`'s stale-member check):
 * unless the cluster has no embedded etcd (its server Nodes carry no `etcd` role: SQLite or an external datastore,
 * where a server holds no member). A VM with a Node is not asked: its Node owns its member, or it has none. Its role in
 * homelab.yaml is not asked either: read, the members show what it is (a VM that homelab.yaml now calls an agent may
 * have been installed as a server); only while they cannot be read does `removal` take homelab.yaml's word for it.
 */
export const mayHoldMemberWithoutNode = (nodes: ReadonlyArray<ClusterNode>, vm: string): boolean => {
  if (nodes.some((n) => n.name === vm)) return false
  const servers = nodes.filter((n) => n.role === "server")
  return servers.length === 0 || servers.some((n) => n.roleLabels.includes("etcd"))
}

/**
 * What to do when the teardown (`command`) of VM `vm` (VMID `vmid`), without a k3s Node, is held back because the
 * etcd members could not be read: make them readable, then the same command again.
 */
export const membersUnknownTeardownHint = (vm: string, vmid: number, command: string): string =>
  `VM ${vmid} ${vm} stays as it is until the members can be read: check that a Ready server answers \`curl -sk https://127.0.0.1:6443/db/info\` (k3s v1.27.14 or later), and run the same \`${command}\` again; if etcd lists a member of ${vm} then, remove it first as that run says`

/** A server VM of ours that the plan would rebuild or tear down, as the stalled-learner check sees it. */
export interface RemovedServerVm {
  readonly node: string
  readonly vm: string
  readonly vmid: number
  /** Its run state (`running`, `stopped`, `paused`, `suspended`, `prelaunch`, …). */
  readonly status: string
  /** Its k3s unit as observe read it, when its VM runs and has no Node (`serverUnits`). */
  readonly unit?: ServerUnit | undefined
  /** The member its k3s added for itself since it started, as its journal shows (observe's `joiningMembers`). */
  readonly joining?: { readonly member: string } | undefined
}

/**
 * The finding that holds back the rebuild (`purpose` `rebuild`) or teardown (`{ command }`: `homelab destroy`,
 * `apply --prune`) of server VM `vm` while etcd lists a learner of its name that no Node owns and no join goes on as
 * it: its VM does not run (the join its k3s began was cut short when the VM stopped or paused), or its VM runs and its
 * k3s as observe read it is not joining as it (`notJoiningAs`: not running, or a journal since its start that shows no
 * such join). Such a learner is stale, not "joining right now" (which would hold the VM back for a Node that never
 * comes). k3s removes a member only through its Node and this one has none, so homelab leaves the VM as it is and says
 * the ways on: for a rebuild, bring k3s back as that member where it can (start or resume the VM by hand, or start a
 * stopped k3s whose etcd data is that learner's: k3s pkg/etcd `Starting etcd for existing cluster member`); remove the
 * learner with etcdctl on `server`; or wait for the etcd leader to evict it (5 minutes without progress). Undefined
 * when etcd lists no such learner, `facts` were not read, or a join may go on (then `joiningMemberFinding`).
 */
export const stalledLearnerFinding = (
  facts: ClusterFacts | undefined,
  vm: RemovedServerVm,
  purpose: "rebuild" | { readonly command: string },
  context: string,
  server: string
): Finding | undefined => {
  if (facts === undefined) return undefined
  const learners = joiningMembersOf(facts, vm.vm)
  const learner = learners[0]
  // none, or one its k3s joins as right now (its journal says so): a join going on
  if (learner === undefined || learners.some((m) => m.name === vm.joining?.member)) return undefined
  const one = learners.length === 1
  const notJoining =
    vm.status !== "running"
      ? `the join its k3s began was cut short when its VM went down (VM ${vm.vmid} is ${vm.status})`
      : notJoiningAs({ node: vm.node, vm: vm.vm, vmid: vm.vmid, unit: vm.unit })
  if (notJoining === undefined) return undefined
  const unit = vm.unit !== undefined && !("error" in vm.unit) ? vm.unit : undefined
  const bringUp =
    vm.status === "stopped"
      ? `start it by hand (\`qm start ${vm.vmid}\` on ${vm.node})`
      : vm.status === "paused" || vm.status === "suspended"
        ? `resume it by hand (\`qm resume ${vm.vmid}\` on ${vm.node})`
        : vm.status === "running" &&
            unit !== undefined &&
            unit.state !== "active" &&
            unit.state !== "activating" &&
            learners.some((m) => m.name === unit.member)
          ? `start its k3s (\`sudo systemctl start k3s\` on ${vm.vm})`
          : undefined
  const named = learners.map((m) => `${m.name} (ID ${memberIdHex(m.id)})`).join(", ")
  const after =
    purpose === "rebuild" ? `the next apply rebuilds ${vm.vm}` : `the same \`${purpose.command}\` removes the VM`
  return {
    code: "k3s.stale-member",
    effect: "blocked",
    layer: vm.status === "running" ? "k3s" : "vm",
    node: vm.node,
    vm: vm.vm,
    vmid: vm.vmid,
    message: `etcd still lists ${one ? "the learner" : "the learners"} ${named} of ${vm.vm}, and no Node owns ${one ? "it" : "them"}: ${notJoining}, and no join goes on as ${one ? "it" : "them"} now; k3s removes a member only through its Node, so ${vm.vm} cannot be taken out of the cluster while ${one ? "it stays" : "they stay"}; ${context}`,
    hint: [
      ...(bringUp === undefined || purpose !== "rebuild"
        ? []
        : [
            `${bringUp}: its k3s carries on as that member and joins (k3s: "Starting etcd for existing cluster member"), and the VM stays`
          ]),
      `remove the learner on ${server} with an etcdctl of your own (k3s ships none): \`${etcdctlRemove(memberIdHex(learner.id))}\`, and ${after} then`
    ]
      .join("; or ")
      .concat(learnerEvictionHint(vm.vm, learners, `${after} then`))
  }
}
