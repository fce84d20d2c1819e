// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the warnings suggest homelab.yaml's ${VAR} references
/** What `parseConfigWithWarnings` warns about in a valid homelab.yaml (see `ConfigWarning`). */
import type { ConfigWarning } from "../ConfigWarning.js"
import type { HomelabConfig } from "../HomelabConfig.js"
import { secretFields, valueAt } from "./issues.js"
import type { SourceTree } from "./yamlTree.js"

const at = (tree: SourceTree, path: string) => {
  const position = tree.positions.get(path)
  return position === undefined ? {} : { line: position.line, column: position.column }
}

/**
 * What of a secret's text, as written, is not a plain `${VAR}` reference: a `${VAR:-default}`'s default, an
 * escaped `$${`, text around the references. Empty when the secret comes from the environment alone.
 */
const writtenPart = (template: string): string =>
  template.replaceAll(/\$\{[A-Za-z_][A-Za-z0-9_]*(?::-)?\}/gu, "").trim()

/**
 * A secret field whose value is written in the file, not a `${VAR}` reference: it ends up in backups, version
 * control, screen shares. So does a `${VAR:-default}`'s default (used whenever VAR is unset or empty), or text
 * around a reference. Only the field is named, never its value.
 */
const literalSecrets = (tree: SourceTree): Array<ConfigWarning> =>
  Object.entries(secretFields).flatMap(([path, variable]) => {
    if (valueAt(tree.value, path.split(".")) === undefined) return []
    const template = tree.interpolated.get(path)
    if (template !== undefined && writtenPart(template) === "") return []
    const how =
      template === undefined
        ? ""
        : /\$\{[A-Za-z_][A-Za-z0-9_]*:-[^}]+\}/u.test(template)
          ? " as a ${VAR:-default}'s default"
          : " around its ${VAR} reference"
    return [
      {
        code: "literal-secret" as const,
        path,
        ...at(tree, path),
        message: `a secret written in the file${how}: write \${${variable}} there and export ${variable}`
      }
    ]
  })

/**
 * `ssh.user` other than root: pvesh/qm over SSH run as that user and need root, for the fallback when a node's API
 * fails (`proxmox.fallback: ssh`) and, always, for creating VMs from an iso image (`image.content: iso`). A warning,
 * not an error: a lab whose API answers never needs the fallback.
 */
const sshUserNotRoot = (tree: SourceTree, config: HomelabConfig): Array<ConfigWarning> => {
  const user = config.ssh.user
  if (user === "root") return []
  const iso = config.image.content === "iso"
  if (config.proxmox.fallback !== "ssh" && !iso) return []
  const message = iso
    ? `${JSON.stringify(user)}, not root: creating the VMs from an iso image (image.content: iso) goes over SSH as root (pvesh), and so does the fallback when a node's API fails: set ssh.user: root`
    : `${JSON.stringify(user)}, not root: pvesh/qm over SSH need root; the fallback to them when a node's API fails (proxmox.fallback: ssh) would fail (labs whose API answers never use it): set ssh.user: root, or proxmox.fallback: off`
  return [{ code: "ssh-user-not-root", path: "ssh.user", ...at(tree, "ssh.user"), message }]
}

export const configWarnings = (tree: SourceTree, config: HomelabConfig): Array<ConfigWarning> => [
  ...literalSecrets(tree),
  ...sshUserNotRoot(tree, config)
]
