import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import type { SimClock } from "./Clock.js"
import { PveError } from "./PveError.js"
import type { Scenario } from "./Scenario.js"

/**
 * pve-access-control's privilege groups (`$privgroups` in PVE/AccessControl.pm): PVE 9 has `VM.GuestAgent.*` and
 * `VM.Replicate`, PVE 8 has `VM.Monitor` instead.
 */
const privGroups = (nine: boolean): Record<string, Record<"root" | "admin" | "user" | "audit", Array<string>>> => ({
  VM: {
    root: [],
    admin: [
      "VM.Config.Disk",
      "VM.Config.CPU",
      "VM.Config.Memory",
      "VM.Config.Network",
      "VM.Config.HWType",
      "VM.Config.Options",
      "VM.Allocate",
      "VM.Clone",
      ...(nine ? ["VM.GuestAgent.Unrestricted"] : []),
      "VM.Migrate",
      ...(nine ? ["VM.Replicate"] : ["VM.Monitor"]),
      "VM.Snapshot",
      "VM.Snapshot.Rollback"
    ],
    user: [
      "VM.Config.CDROM",
      "VM.Config.Cloudinit",
      "VM.Console",
      "VM.Backup",
      ...(nine ? ["VM.GuestAgent.FileRead", "VM.GuestAgent.FileSystemMgmt", "VM.GuestAgent.FileWrite"] : []),
      "VM.PowerMgmt"
    ],
    audit: ["VM.Audit", ...(nine ? ["VM.GuestAgent.Audit"] : [])]
  },
  Sys: {
    root: ["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
    admin: ["Sys.Console", "Sys.Syslog"],
    user: [],
    audit: ["Sys.Audit"]
  },
  Datastore: {
    root: [],
    admin: ["Datastore.Allocate", "Datastore.AllocateTemplate"],
    user: ["Datastore.AllocateSpace"],
    audit: ["Datastore.Audit"]
  },
  SDN: { root: [], admin: ["SDN.Allocate", "SDN.Audit"], user: ["SDN.Use"], audit: ["SDN.Audit"] },
  User: {
    root: ["Realm.Allocate"],
    admin: ["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
    user: [],
    audit: []
  },
  Pool: { root: [], admin: ["Pool.Allocate"], user: ["Pool.Audit"], audit: ["Pool.Audit"] },
  Mapping: { root: [], admin: ["Mapping.Modify"], user: ["Mapping.Use"], audit: ["Mapping.Audit"] }
})

/** The built-in roles of a PVE version, built as `create_roles` does (Administrator, NoAccess, PVE*Admin/User, …). */
export const pveRoles = (nine: boolean): Record<string, ReadonlyArray<string>> => {
  const roles: Record<string, Set<string>> = { NoAccess: new Set(), Administrator: new Set(["Permissions.Modify"]) }
  const add = (role: string, priv: string) => {
    roles[role] ??= new Set()
    roles[role].add(priv)
  }
  for (const [cat, g] of Object.entries(privGroups(nine))) {
    for (const p of [...g.root, ...g.admin, ...g.user, ...g.audit]) add("Administrator", p)
    for (const p of [...g.admin, ...g.user, ...g.audit]) {
      add(`PVE${cat}Admin`, p)
      add("PVEAdmin", p)
    }
    if (g.user.length > 0) for (const p of [...g.user, ...g.audit]) add(`PVE${cat}User`, p)
    for (const p of g.audit) add("PVEAuditor", p)
  }
  roles.PVEAdmin?.delete("Mapping.Modify")
  roles.PVETemplateUser = new Set(["VM.Clone", "VM.Audit"])
  return Object.fromEntries(Object.entries(roles).map(([k, v]) => [k, [...v].sort()]))
}

/** The roles of PVE 9. */
export const ROLES: Record<string, ReadonlyArray<string>> = pveRoles(true)

interface TokenEntry {
  readonly userid: string
  readonly tokenid: string
  readonly secret: string
  readonly privsep: boolean
}

interface AclEntry {
  /** normalised: `/` or `/a/b` */
  readonly path: string
  readonly ugid: string
  /** a role name, or a literal `priv:A,B` privilege list */
  readonly role: string
  readonly propagate: boolean
}

/** A privilege → propagate flag (0/1) map, as `$rpcenv->permissions` returns it. */
export type PrivMap = Record<string, 0 | 1>

const normalisePath = (path: string): string =>
  `/${path
    .split("/")
    .filter((p) => p !== "")
    .join("/")}`

/** An authenticated caller. `authuser` is `root@pam` or `root@pam!tokenid` (the token is not root, §7). */
export interface AuthUser {
  readonly authuser: string
  readonly via: "token" | "ticket" | "cli"
}

export class Auth {
  private readonly users = new Map<string, { password: string | undefined; enable: boolean }>()
  private readonly tokens = new Map<string, TokenEntry>()
  private readonly acls: Array<AclEntry> = []
  private readonly secret = randomBytes(32)
  private readonly roles: Record<string, ReadonlyArray<string>>

  constructor(
    scenario: Scenario,
    private readonly clock: SimClock,
    nine = true
  ) {
    this.roles = pveRoles(nine)
    this.users.set("root@pam", { password: undefined, enable: true })
    for (const u of scenario.users ?? []) {
      this.users.set(u.userid, { password: u.password, enable: u.enable ?? true })
      for (const t of u.tokens ?? [])
        this.tokens.set(`${u.userid}!${t.id}`, {
          userid: u.userid,
          tokenid: t.id,
          secret: t.secret,
          privsep: t.privsep ?? true
        })
    }
    for (const a of scenario.acls ?? [])
      this.acls.push({ path: normalisePath(a.path), ugid: a.ugid, role: a.role, propagate: a.propagate ?? true })
  }

  /** Parse an `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET` header (space also works; last `=` splits). */
  checkToken(header: string): AuthUser {
    const m = /^PVEAPIToken[= ](.+)$/.exec(header.trim())
    if (!m) throw new PveError(401, "Authentication failed!")
    let value = m[1] ?? ""
    try {
      value = decodeURIComponent(value)
    } catch {
      // keep raw
    }
    const eq = value.lastIndexOf("=")
    if (eq < 0) throw new PveError(401, "Authentication failed!")
    const tokenFull = value.slice(0, eq)
    const secret = value.slice(eq + 1)
    const tm = /^([^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]+)$/.exec(tokenFull)
    if (!tm) throw new PveError(401, "Authentication failed!")
    const entry = this.tokens.get(tokenFull)
    const user = this.users.get(tm[1] ?? "")
    if (entry === undefined || user === undefined || !user.enable) throw new PveError(401, "Authentication failed!")
    const a = Buffer.from(entry.secret)
    const b = Buffer.from(secret)
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new PveError(401, "Authentication failed!")
    return { authuser: tokenFull, via: "token" }
  }

  /** POST /access/ticket with username + password (or an old ticket as password). */
  login(username: string, password: string, realm: string | undefined): Record<string, unknown> {
    const userid = username.includes("@") ? username : `${username}@${realm ?? "pam"}`
    const user = this.users.get(userid)
    let ok = false
    if (user?.enable && user.password !== undefined && user.password === password) ok = true
    if (!ok && password.startsWith("PVE:")) {
      try {
        ok = this.verifyTicket(password) === userid
      } catch {
        ok = false
      }
    }
    if (!ok) throw new PveError(401, "authentication failure")
    const ticket = this.makeTicket(userid)
    return {
      username: userid,
      ticket,
      CSRFPreventionToken: this.makeCsrf(userid),
      cap: { vms: {}, storage: {}, access: {}, nodes: {}, dc: {}, sdn: {}, mapping: {} }
    }
  }

  private hex8(): string {
    return Math.floor(this.clock.now() / 1000)
      .toString(16)
      .toUpperCase()
      .padStart(8, "0")
  }

  private makeTicket(userid: string): string {
    const plain = `PVE:${userid}:${this.hex8()}`
    const sig = createHmac("sha256", this.secret).update(plain).digest("base64")
    return `${plain}::${sig}`
  }

  private makeCsrf(userid: string): string {
    const t = this.hex8()
    return `${t}:${createHmac("sha256", this.secret).update(`${t}:${userid}`).digest("base64").replace(/=+$/, "")}`
  }

  /** Returns the userid of a valid ticket or throws 401. */
  verifyTicket(ticket: string): string {
    const m = /^(PVE:([^:]+):([0-9A-F]{8}))::(.+)$/.exec(ticket)
    if (!m) throw new PveError(401, "Authentication failed!")
    const sig = createHmac("sha256", this.secret)
      .update(m[1] ?? "")
      .digest("base64")
    if (sig !== m[4]) throw new PveError(401, "Authentication failed!")
    const age = this.clock.now() / 1000 - Number.parseInt(m[3] ?? "0", 16)
    if (age > 7200 + 300) throw new PveError(401, "Authentication failed!")
    const userid = m[2] ?? ""
    if (!this.users.get(userid)?.enable) throw new PveError(401, "Authentication failed!")
    return userid
  }

  verifyCsrf(userid: string, token: string | undefined): void {
    const m = /^([0-9A-F]{8}):(.+)$/.exec(token ?? "")
    const expected =
      m === null
        ? undefined
        : createHmac("sha256", this.secret).update(`${m[1]}:${userid}`).digest("base64").replace(/=+$/, "")
    if (m === null || expected !== m[2]) throw new PveError(401, "Permission denied - invalid csrf token")
  }

  isRoot(u: AuthUser): boolean {
    return u.authuser === "root@pam"
  }

  private rolePrivs(role: string): ReadonlyArray<string> {
    return role.startsWith("priv:") ? role.slice(5).split(",") : (this.roles[role] ?? [])
  }

  /**
   * `PVE::AccessControl::roles` for one principal (a user or a token id): walking from `/` down to `path`, the
   * principal's ACL entries on a level replace what was inherited, if they apply there (on `path` itself, or with
   * propagate). Returns role → propagate.
   */
  private rolesOf(principal: string, path: string): Map<string, boolean> {
    let roles = new Map<string, boolean>()
    const parts = normalisePath(path)
      .split("/")
      .filter((p) => p !== "")
    for (let depth = 0; depth <= parts.length; depth++) {
      const level = `/${parts.slice(0, depth).join("/")}`
      const final = depth === parts.length
      const here = new Map<string, boolean>()
      for (const a of this.acls)
        if (a.ugid === principal && a.path === level && (final || a.propagate)) here.set(a.role, a.propagate)
      if (here.size > 0) roles = here
    }
    return roles
  }

  /** privileges of a principal's roles on a path, each with its propagate flag (OR over the roles holding it) */
  private compile(principal: string, path: string): PrivMap {
    const privs: PrivMap = {}
    for (const [role, propagate] of this.rolesOf(principal, path))
      for (const p of this.rolePrivs(role)) privs[p] = privs[p] === 1 || propagate ? 1 : 0
    return privs
  }

  /**
   * `$rpcenv->permissions($authid, $path)`: root@pam has every privilege; a user what its ACLs give; a token without
   * privilege separation what its user has; a privilege-separated token the privileges both it and its user have
   * (propagating only where both do).
   */
  permissions(authid: string, path: string): PrivMap {
    if (authid === "root@pam") return Object.fromEntries((this.roles.Administrator ?? []).map((p) => [p, 1]))
    const bang = authid.indexOf("!")
    if (bang < 0) return this.users.has(authid) ? this.compile(authid, path) : {}
    const token = this.tokens.get(authid)
    if (token === undefined) return {}
    const userPrivs = this.permissions(token.userid, path)
    if (!token.privsep) return userPrivs
    const out: PrivMap = {}
    for (const [p, flag] of Object.entries(this.compile(authid, path)))
      if (userPrivs[p] !== undefined) out[p] = userPrivs[p] === 1 && flag === 1 ? 1 : 0
    return out
  }

  /**
   * `get_effective_permissions`: the top-level paths plus every path of the ACL tree, each with the principal's
   * privileges there; paths where it has none are left out.
   */
  effectivePermissions(authid: string): Record<string, PrivMap> {
    const paths = new Set(["/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"])
    for (const a of this.acls) {
      const parts = a.path.split("/").filter((p) => p !== "")
      for (let i = 0; i <= parts.length; i++) paths.add(`/${parts.slice(0, i).join("/")}`)
    }
    const out: Record<string, PrivMap> = {}
    for (const path of [...paths].sort()) {
      const privs = this.permissions(authid, path)
      if (Object.keys(privs).length > 0) out[path] = privs
    }
    return out
  }

  /** Effective privileges of a caller on an ACL path. */
  privs(u: AuthUser, path: string): Set<string> {
    return new Set(Object.keys(this.permissions(u.authuser, path)))
  }

  can(u: AuthUser, path: string, ...anyOf: ReadonlyArray<string>): boolean {
    if (u.via === "cli" || u.authuser === "root@pam") return true
    const p = this.privs(u, path)
    return anyOf.some((x) => p.has(x))
  }

  /** `$rpcenv->check_any`: one of the privileges on the path, else `Permission check failed (path, A|B)`. */
  check(u: AuthUser, path: string, ...anyOf: ReadonlyArray<string>): void {
    if (!this.can(u, path, ...anyOf)) throw new PveError(403, `Permission check failed (${path}, ${anyOf.join("|")})`)
  }

  /** `$rpcenv->check`: every privilege on the path, else `Permission check failed (path, <first missing>)`. */
  checkAll(u: AuthUser, path: string, ...all: ReadonlyArray<string>): void {
    if (u.via === "cli" || u.authuser === "root@pam") return
    const p = this.privs(u, path)
    const missing = all.find((x) => !p.has(x))
    if (missing !== undefined) throw new PveError(403, `Permission check failed (${path}, ${missing})`)
  }

  /** Does the user exist (`user@realm`), or the token (`user@realm!id`)? */
  exists(authid: string): boolean {
    return authid.includes("!") ? this.tokens.has(authid) : this.users.has(authid)
  }
}
