// Join one host to an existing k3s cluster over SSH, with @homelab/k3s-join's Promise API.
//
//   node dist/main.js --server 10.0.0.5 --host 10.0.0.21 [--role agent|server] [--user ubuntu] [--port 22]
//                     [--key ~/.ssh/id_ed25519] [--known-hosts ~/.ssh/known_hosts] [--rebuilt]
//
// The token is read from the server (sudo -n cat …) and travels on stdin only; the k3s version is pinned to the
// servers'. Running it again on a member changes nothing.
import os from "node:os"
import { parseArgs } from "node:util"
import { createK3sJoin, K3sJoinError } from "@homelab/k3s-join"

const { values: a } = parseArgs({
  options: {
    server: { type: "string" },
    host: { type: "string" },
    role: { type: "string", default: "agent" },
    user: { type: "string", default: "ubuntu" },
    port: { type: "string", default: "22" },
    key: { type: "string", default: `${os.homedir()}/.ssh/id_ed25519` },
    "known-hosts": { type: "string", default: `${os.homedir()}/.ssh/known_hosts` },
    rebuilt: { type: "boolean", default: false }
  }
})
if (!a.server || !a.host || (a.role !== "agent" && a.role !== "server")) {
  console.error(
    "usage: main.js --server ADDRESS --host ADDRESS [--role agent|server] [--user U] [--port P] [--key FILE]"
  )
  process.exit(2)
}

const k3s = createK3sJoin({ ssh: { user: a.user, privateKeyPath: a.key, knownHosts: a["known-hosts"] } })
try {
  const port = Number(a.port)
  const result = await k3s.ensureMember({
    server: { host: a.server, port },
    host: { host: a.host, port },
    role: a.role,
    rebuilt: a.rebuilt,
    onEvent: (e) => e._tag === "Step" && console.log(`  ${e.host}: ${e.step}${e.detail ? ` (${e.detail})` : ""}`)
  })
  console.log(
    result._tag === "AlreadyMember"
      ? `${result.node} is already a Ready ${result.role} (${result.version}); nothing to do`
      : `${result.node} joined as ${result.role} (${result.version}) in ${(result.timings.totalMs / 1000).toFixed(1)} s`
  )
} catch (error) {
  // Failures carry a typed reason: BadToken, ServerUnreachable, NodePasswordRejected, Timeout, …
  console.error(error instanceof K3sJoinError ? `join failed (${error.reason._tag}): ${error.message}` : error)
  process.exitCode = 1
} finally {
  await k3s.close()
}
