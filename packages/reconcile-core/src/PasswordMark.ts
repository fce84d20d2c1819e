import { createHmac } from "node:crypto"
import * as Redacted from "effect/Redacted"

/**
 * The keyed mark of the cloud-init password homelab set on a VM, kept in one of the VM's tags:
 * `homelab-pw-<kid>-<mac>`. PVE never shows a password back (`cipassword` reads `**********` in `GET …/config` and
 * `GET …/pending`), so without it homelab could tell only whether a VM has a password, not whether it is
 * `vm.password`: a changed `vm.password` would never reach the VMs.
 *
 * The key is the secret of the Proxmox API token homelab.yaml holds (`proxmox.auth.secret`). `kid` (4 hex digits)
 * names the key: HMAC-SHA256(key, "homelab vm.password key id"). `mac` (12 hex digits) is
 * HMAC-SHA256(key, "homelab vm.password\0" + VM name + "\0" + password). Tags are readable by anyone with
 * `VM.Audit`; without the token's secret a mark tells them nothing about the password, nor (the VM's name is part of
 * it) whether two VMs share one. Both are lowercase hex, so the tag is a valid pve-tag (`[a-z0-9_][a-z0-9_\-+.]*`)
 * that PVE's normalisation (lowercase, sorted) keeps as it is.
 *
 * A mark of another `kid` was made with another key (the token's secret was rotated since): it says nothing about
 * the password. Two keys share a `kid` once in 65,536; the mark then reads as a changed password, and apply sets
 * `vm.password` again (what homelab.yaml asks anyway, at the cost of a restart).
 */
export interface PasswordMark {
  /** The key's id: 4 hex digits. */
  readonly kid: string
  /** The whole tag, `homelab-pw-<kid>-<mac>`. */
  readonly tag: string
}

/** The start of every password mark. */
export const PasswordMarkPrefix = "homelab-pw-"

const markPattern = /^homelab-pw-([0-9a-f]{4})-([0-9a-f]{12})$/i

const hmacHex = (key: Redacted.Redacted<string>, message: string): string =>
  createHmac("sha256", Redacted.value(key)).update(message, "utf8").digest("hex")

/** The id of a key (`kid`): the first 4 hex digits of HMAC-SHA256(key, "homelab vm.password key id"). */
export const passwordMarkKid = (key: Redacted.Redacted<string>): string =>
  hmacHex(key, "homelab vm.password key id").slice(0, 4)

/** The mark of `password` on the VM named `vm`, made with `key` (the API token's secret). */
export const passwordMark = (
  key: Redacted.Redacted<string>,
  vm: string,
  password: Redacted.Redacted<string>
): PasswordMark => {
  const kid = passwordMarkKid(key)
  const mac = hmacHex(key, `homelab vm.password\0${vm}\0${Redacted.value(password)}`).slice(0, 12)
  return { kid, tag: `${PasswordMarkPrefix}${kid}-${mac}` }
}

/** Whether a tag is a password mark (of any key); PVE may keep tags in upper case (`tag-style` case-sensitive). */
export const isPasswordMark = (tag: string): boolean => markPattern.test(tag)

/** The key id of a password mark (lowercase); undefined for another tag. */
export const passwordMarkKidOf = (tag: string): string | undefined => markPattern.exec(tag)?.[1]?.toLowerCase()

/**
 * What a VM's tags say about its `cipassword` against the mark of `vm.password` (`want`): `matches` (a mark equal to
 * `want`: the password homelab set is `vm.password`), `changed` (a mark of the same key, none equal to `want`: the
 * password homelab set is another one), `unmarked` (no mark: set before homelab marked passwords, or by hand),
 * `other-key` (only marks of another key: the API token's secret changed since; homelab cannot tell).
 */
export type PasswordMarkState = "matches" | "changed" | "unmarked" | "other-key"

export const passwordMarkState = (tags: ReadonlyArray<string>, want: PasswordMark): PasswordMarkState => {
  const marks = tags.filter(isPasswordMark)
  if (marks.some((t) => t.toLowerCase() === want.tag)) return "matches"
  if (marks.some((t) => passwordMarkKidOf(t) === want.kid)) return "changed"
  return marks.length === 0 ? "unmarked" : "other-key"
}
