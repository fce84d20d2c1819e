/**
 * The `homelab` command's exit codes: the single table, mirrored in the README and in each command's `--help`.
 *
 * `apply` and `reprovision` exit 0 only when every selected node is converged at the end (the image is there, each
 * VM exists once, is ours and healthy, and with `k3s:` is a Ready member); `status` exits 0 only when converged, 5
 * otherwise. `plan` follows Terraform: 0 when it planned (changes or not), 1 when some node cannot converge without
 * the user; with `--detailed-exitcode`: 0 nothing to do, 2 changes pending, 1 blocked.
 */
export const ExitCode = {
  /**
   * Success: converged (`apply`, `status`), all of ours in scope gone but protected VMs, which it never touches and
   * lists (`destroy`), or planned (`plan`; with
   * `--detailed-exitcode`: nothing to do).
   */
  Ok: 0,
  /**
   * An error the tool could not recover from, including bugs; `plan`: some node is blocked (needs the user); `adopt`:
   * some VM could not be adopted (on another node, protected under --all, changed since it was read, …).
   */
  Error: 1,
  /** `plan --detailed-exitcode`: changes are pending. */
  Changes: 2,
  /**
   * A usage error (unknown or missing subcommand, unknown flag, missing argument): the same code as pending changes,
   * as in Terraform.
   */
  Usage: 2,
  /** homelab.yaml is invalid, or a file it names cannot be read. */
  Config: 3,
  /** The Proxmox cluster could not be observed at all (no node answered) or refused the API token. */
  Proxmox: 4,
  /**
   * Some selected nodes are not converged at the end (`apply`), the lab is not converged (`status`), something it
   * was to destroy is left (`destroy`: a failure, or a VM it could not take this run), or `kubeconfig` has no k3s
   * server to read from (none Ready, or SSH to it failed).
   */
  NotConverged: 5,
  /** @deprecated the old name of `NotConverged` */
  Partial: 5,
  /**
   * Only destructive actions that were not confirmed are left (`destroy`: the destruction, `adopt`: the adoption was
   * not confirmed): re-run with --yes, or interactively.
   */
  NeedsConfirmation: 6,
  /**
   * Only k3s work is left: a join or upgrade failed, or the quorum guard kept a running server up (every VM is in
   * place; a server VM that is down and whose rebuild the guard refused is not, and exits `NotConverged`).
   */
  Join: 7,
  /**
   * Every change is applied, and some wait for a VM restart (`vm.restart: never`): restart those VMs, or set
   * `vm.restart: rolling`.
   */
  PendingRestart: 8,
  /**
   * `apply FILE`: the saved plan is not applied, nothing was changed: the lab changed since it was made (a VM
   * changed, appeared or disappeared; the plan made now differs), or it was made from another homelab.yaml.
   */
  PlanStale: 9,
  /** Interrupted (Ctrl-C): the next run resumes what was in flight. */
  Interrupted: 130
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
