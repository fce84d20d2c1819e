import * as Schema from "effect/Schema"

/**
 * Something in a valid `homelab.yaml` that works but is worth changing: where it is (path and, when known, 1-based
 * line and column) and what to do, in one sentence. `code` is a stable machine-readable kind:
 * - `literal-secret`: a secret field written as its value instead of a `${VAR}` reference (the value is never shown);
 * - `ssh-user-not-root`: `ssh.user` is not root, while pvesh/qm over SSH (the fallback, iso-image creates) need root.
 */
export const ConfigWarning = Schema.Struct({
  code: Schema.Literals(["literal-secret", "ssh-user-not-root"]),
  path: Schema.String,
  line: Schema.optionalKey(Schema.Number),
  column: Schema.optionalKey(Schema.Number),
  message: Schema.String
})

export type ConfigWarning = typeof ConfigWarning.Type

/** One line: `homelab.yaml:19:13 proxmox.auth.secret: a secret written in the file: …`. */
export const formatConfigWarning = (source: string, warning: ConfigWarning): string => {
  const where =
    warning.line === undefined
      ? source
      : `${source}:${warning.line}${warning.column === undefined ? "" : `:${warning.column}`}`
  return `${where} ${warning.path}: ${warning.message}`
}
