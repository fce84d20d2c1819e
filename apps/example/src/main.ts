// Join one host to an existing k3s cluster over SSH, with @homelab/k3s-join's Promise API.
//
//   node dist/main.js --server 10.0.0.5 --host 10.0.0.21 [--role agent|server] [--user ubuntu] [--port 22]
//                     [--key ~/.ssh/id_ed25519] [--known-hosts ~/.ssh/known_hosts] [--rebuilt]    (--help: usage)
//
// The token is read from the server (sudo -n cat …) and travels on stdin only; the k3s version is pinned to the
// servers'. Running it again on a member changes nothing.
import os from "node:os"
import { parseArgs } from "node:util"
import { createK3sJoin, K3sJoinError } from "@homelab/k3s-join"

const usage = `usage: main.js --server ADDRESS --host ADDRESS [--role agent|server] [--user USER] [--port PORT]
                [--key FILE] [--known-hosts FILE] [--rebuilt]

  --server       a k3s server of the cluster (its join token is read there over SSH)
  --host         the host to join
  --role         agent (default) or server
  --user         SSH user on both, with passwordless sudo (default ubuntu)
  --port         SSH port on both (default 22)
  --key          SSH private key (default ~/.ssh/id_ed25519)
  --known-hosts  known_hosts file the host keys are checked against (default ~/.ssh/known_hosts)
  --rebuilt      the host was rebuilt: remove its stale Node and node-password secret first`

const usageError = (message: string): never => {
  console.error(`${message}\n${usage}`)
  process.exit(2)
}

const parsed = (() => {
  try {
    return parseArgs({
      options: {
        server: { type: "string" },
        host: { type: "string" },
        role: { type: "string", default: "agent" },
        user: { type: "string", default: "ubuntu" },
        port: { type: "string", default: "22" },
        key: { type: "string", default: `${os.homedir()}/.ssh/id_ed25519` },
        "known-hosts": { type: "string", default: `${os.homedir()}/.ssh/known_hosts` },
        rebuilt: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false }
      }
    })
  } catch (error) {
    // an unknown option, or one without its value: Node's own message names it
    return usageError(error instanceof Error ? error.message : String(error))
  }
})()
const a = parsed.values
if (a.help) {
  console.log(usage)
  process.exit(0)
}
const server = a.server ?? usageError("--server is required")
const host = a.host ?? usageError("--host is required")
const role =
  a.role === "agent" || a.role === "server" ? a.role : usageError(`--role must be agent or server, not ${a.role}`)
const port =
  /^[0-9]+$/.test(a.port) && Number(a.port) >= 1 && Number(a.port) <= 65535
    ? Number(a.port)
    : usageError(`--port must be a port number (1-65535), not ${a.port}`)

const k3s = createK3sJoin({ ssh: { user: a.user, privateKeyPath: a.key, knownHosts: a["known-hosts"] } })
try {
  const result = await k3s.ensureMember({
    server: { host: server, port },
    host: { host, port },
    role,
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
