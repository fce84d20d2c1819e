/**
 * The `homelab` command's exit codes: the single table, mirrored in the README.
 */
export const ExitCode = {
  /** Success; for `plan`: no changes. */
  Ok: 0,
  /** An error the tool could not recover from, including bugs. */
  Error: 1,
  /** `plan` only: changes are pending. Also: usage errors (bad flags). */
  Changes: 2,
  /** homelab.yaml is invalid, or a file it names cannot be read. */
  Config: 3,
  /** Proxmox could not be reached or refused us (TLS, auth, permissions, API errors). */
  Proxmox: 4,
  /** Some nodes did not converge (preflight findings, failed actions); the others did. */
  Partial: 5,
  /** A destructive action needs confirmation: re-run with --yes, or interactively. */
  NeedsConfirmation: 6,
  /** A k3s join failed. */
  Join: 7,
  /** Interrupted (Ctrl-C). */
  Interrupted: 130
} as const

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]
