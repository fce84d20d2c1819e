import * as Schema from "effect/Schema"

/**
 * The body of `GET /access/permissions` for the token (or user) the reconciler uses: ACL path → privilege →
 * propagate flag (0/1 or boolean). A privilege that is listed is granted on that path; the flag says whether it is
 * inherited by the paths below.
 *
 * @since 0.1.0
 * @category models
 */
export const PermissionMap = Schema.Record(
  Schema.String,
  Schema.Record(Schema.String, Schema.Union([Schema.Number, Schema.Boolean]))
)

/**
 * @since 0.1.0
 * @category models
 */
export type PermissionMap = typeof PermissionMap.Type

/**
 * Who talks to Proxmox: an API token or non-root user with its effective permissions, or `root@pam` (over SSH, or
 * with a password ticket), which needs no privilege check.
 *
 * @since 0.1.0
 * @category models
 */
export const AccessFact = Schema.Union([
  Schema.TaggedStruct("Permissions", { principal: Schema.String, permissions: PermissionMap }),
  Schema.TaggedStruct("Root", {})
])

/**
 * @since 0.1.0
 * @category models
 */
export type AccessFact = typeof AccessFact.Type

/** `/a/b/c` → `["/a/b/c", "/a/b", "/a", "/"]`. */
const selfAndAncestors = (path: string): Array<string> => {
  const parts = path.split("/").filter((part) => part.length > 0)
  const chain: Array<string> = []
  for (let i = parts.length; i > 0; i--) chain.push(`/${parts.slice(0, i).join("/")}`)
  chain.push("/")
  return chain
}

/**
 * Whether `privilege` is granted on `path` according to a `GET /access/permissions` map.
 *
 * PVE lists every path that has an ACL (plus `/`, `/vms`, `/storage`, `/nodes`, `/sdn`, …) with the privileges in
 * effect there. A listed path answers directly; otherwise the nearest listed ancestor answers, counting only
 * privileges whose propagate flag is set. (PVE leaves out paths where the principal has no privileges at all, so a
 * `NoAccess` ACL below a granting one cannot be seen; the check then errs on the side of "granted".)
 *
 * @since 0.1.0
 * @category predicates
 */
export const hasPrivilege = (permissions: PermissionMap, path: string, privilege: string): boolean => {
  const chain = selfAndAncestors(path)
  for (let i = 0; i < chain.length; i++) {
    const listed = permissions[chain[i] as string]
    if (listed === undefined) continue
    const flag = listed[privilege]
    if (flag === undefined) return false
    return i === 0 || flag === true || flag === 1
  }
  return false
}
