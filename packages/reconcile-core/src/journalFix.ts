import type { JournalClassification } from "@homelab/k3s-join"

/**
 * What to do about a k3s server unit that does not come up on a cause that stays, from the journal line it stops on
 * (`JournalClassifier`'s verdict, as `unitStatus` gives it): one sentence naming the cause and the fix, for the
 * finding of a server VM whose k3s homelab finds failing before it does anything (a unit stopped on it, or one that
 * systemd restarts every 5 s, `activating`, on it). `vm` is the VM (its Node's name), `ip` its address.
 */
export const journalFix = (failure: JournalClassification, vm: string, ip: string): string => {
  const token = "`sudo cat /var/lib/rancher/k3s/server/token` on a Ready server"
  const journal = `\`journalctl -u k3s\` on ${ip}`
  switch (failure.failure) {
    case "DuplicateEtcdMember":
      return `etcd still has a member named after ${vm} from an earlier VM or an earlier k3s on it (k3s-uninstall.sh deletes its data, not its member): delete its Node on a Ready server (\`sudo k3s kubectl delete node ${vm}\`, which removes the member), or remove the member with etcdctl if no Node owns it (\`homelab plan\` names it); k3s on ${vm} then joins at its next restart`
    case "EtcdMemberRemoved":
      return `k3s on ${vm} starts on the etcd data of a member the cluster removed (its Node was deleted: a teardown, \`kubectl delete node\`), which etcd refuses at every start: delete that data (\`sudo systemctl stop k3s && sudo rm -rf /var/lib/rancher/k3s/server/db\` on ${ip}) and run apply again, which joins it as a new server; or rebuild the VM with \`homelab reprovision ${vm}\`; or run k3s from January 2026 on (v1.32.11+k3s3, v1.33.7+k3s3, v1.34.3+k3s3, v1.35.0+k3s3 or later), which moves such data aside at a restart and joins again by itself`
    case "EtcdMemberRemovedRestart":
      return `the cluster removed the etcd member of k3s on ${vm} (its Node was deleted: a teardown, \`kubectl delete node\`), and k3s runs on without etcd until it is restarted: restart it (\`sudo systemctl restart k3s\` on ${ip}; apply does when it joins ${vm}), and k3s moves that member's data aside and joins again as a new member through its --server`
    case "DatastoreTokenMismatch":
      return `its etcd data was encrypted with another token than the one k3s on ${vm} starts with: set k3s.token to the token the cluster was started with (the password after 'server:' in ${token}), or remove k3s.token, then run apply again`
    case "CaHashMismatch":
      return `the token k3s on ${vm} starts with is another cluster's (its CA hash is not this cluster's): set k3s.token to this cluster's server token (${token}), or remove k3s.token, then run apply again`
    case "Unauthorized":
      return `the server refuses the token k3s on ${vm} starts with (a wrong password): set k3s.token to the cluster's server token (${token}), or remove k3s.token, then run apply again`
    case "NotAServerToken":
      return `k3s on ${vm} starts with an agent or bootstrap token, which a server cannot use: set k3s.token to the cluster's server token (${token}), or remove k3s.token, then run apply again`
    case "ConfigMismatch":
      return `k3s on ${vm} runs with other critical flags (cluster-cidr, service-cidr, cluster-dns, …) than the cluster's other servers: make k3s.serverFlags match theirs, then run apply again`
    case "NoEmbeddedEtcd":
      return `the server ${vm} joins through runs k3s without embedded etcd (on SQLite, the default of \`curl -sfL https://get.k3s.io | sh -\`, or on an external datastore), which no server can join: on that server run \`echo 'cluster-init: true' | sudo tee -a /etc/rancher/k3s/config.yaml && sudo systemctl restart k3s\` (k3s v1.22.2+ moves SQLite into embedded etcd), or set ${vm}'s role to agent in homelab.yaml; then run apply again`
    case "SanMismatch":
      return `the server k3s on ${vm} joins through does not have the address it is reached at in its certificate: add it with --tls-san in k3s.serverFlags on that server, or join through its node IP`
    case "UndefinedFlag":
      return `k3s on ${vm} was given a flag it does not define: remove it from k3s.installFlags / k3s.serverFlags, then run apply again`
    case "NodePasswordRejected":
      return `another machine registered ${vm} (its Node and ${vm}.node-password.k3s are an earlier VM's): delete them on a Ready server (\`sudo k3s kubectl delete node ${vm}\`), or rebuild the VM with \`homelab reprovision ${vm}\``
    case "EtcdUnavailable":
      return `k3s on ${vm} waits for etcd, which does not answer: too few of the cluster's k3s servers run for its quorum (or etcd is stuck, ${journal}): start the servers that are down; if they are gone for good and ${vm} is the last one, make it a one-member cluster that keeps its data (\`sudo systemctl stop k3s && sudo k3s server --cluster-reset\` on ${ip}, then \`sudo systemctl start k3s\`), and apply rebuilds the others`
    case "TooManyLearners":
    case "ServerUnreachable":
      return `fix what the line says (${journal}); k3s retries by itself`
  }
}

/**
 * What to do when the cluster removed a server's etcd member again after the join restarted its k3s for a removal
 * during that join (`EtcdMemberRemoved` with `afterRestart`): a restart does not help while something keeps removing
 * it.
 */
export const removedAgainHint = (vm: string, ip: string): string =>
  `something removes the etcd member of ${vm} while it joins (someone's \`kubectl delete node ${vm}\`, the \`etcd.k3s.cattle.io/remove\` annotation, another homelab run tearing it down): stop that, then run apply again, which restarts k3s on ${vm} (\`sudo systemctl restart k3s\` on ${ip}) so that it joins again as a new member`
