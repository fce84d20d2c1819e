import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import type { SimClock } from "./Clock.js"
import { PveError } from "./PveError.js"
import type { Scenario } from "./Scenario.js"

const VM_PRIVS = [
  "VM.Allocate",
  "VM.Audit",
  "VM.Backup",
  "VM.Clone",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.Console",
  "VM.Migrate",
  "VM.Monitor",
  "VM.PowerMgmt",
  "VM.Snapshot",
  "VM.GuestAgent.Audit",
  "VM.GuestAgent.Unrestricted"
]
const DS_PRIVS = ["Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate", "Datastore.Audit"]
const SYS_PRIVS = ["Sys.Audit", "Sys.Modify", "Sys.PowerMgmt", "Sys.Console", "Sys.Syslog", "Sys.AccessNetwork"]
const SDN_PRIVS = ["SDN.Use", "SDN.Audit", "SDN.Allocate"]

export const ROLES: Record<string, ReadonlyArray<string>> = {
  Administrator: [...VM_PRIVS, ...DS_PRIVS, ...SYS_PRIVS, ...SDN_PRIVS, "Pool.Audit", "Pool.Allocate", "User.Modify"],
  PVEAuditor: ["VM.Audit", "Datastore.Audit", "Sys.Audit", "SDN.Audit", "Pool.Audit"],
  PVEVMAdmin: [...VM_PRIVS],
  PVEVMUser: ["VM.Audit", "VM.Console", "VM.PowerMgmt", "VM.Config.CDROM", "VM.Config.Cloudinit", "VM.Backup"],
  PVEDatastoreAdmin: [...DS_PRIVS],
  PVEDatastoreUser: ["Datastore.AllocateSpace", "Datastore.Audit"],
  PVESDNUser: ["SDN.Use", "SDN.Audit"],
  PVESysAdmin: [...SYS_PRIVS],
  NoAccess: []
}

/** Privileges of a role name, or of a literal `priv:A,B` list. */
const rolePrivs = (role: string): ReadonlyArray<string> =>
  role.startsWith("priv:") ? role.slice(5).split(",") : (ROLES[role] ?? [])

interface TokenEntry {
  readonly userid: string
  readonly tokenid: string
  readonly secret: string
  readonly privsep: boolean
}

interface AclEntry {
  readonly path: string
  readonly ugid: string
  readonly privs: ReadonlyArray<string>
  readonly propagate: boolean
}

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

  constructor(
    scenario: Scenario,
    private readonly clock: SimClock
  ) {
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
      this.acls.push({ path: a.path, ugid: a.ugid, privs: rolePrivs(a.role), propagate: a.propagate ?? true })
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

  private privsOf(ugid: string, path: string): Set<string> {
    const out = new Set<string>()
    for (const a of this.acls) {
      if (a.ugid !== ugid) continue
      const matches =
        a.path === path ||
        (a.propagate && (a.path === "/" || path.startsWith(a.path.endsWith("/") ? a.path : `${a.path}/`)))
      if (matches) for (const p of a.privs) out.add(p)
    }
    return out
  }

  /** Effective privileges of a caller on an ACL path. */
  privs(u: AuthUser, path: string): Set<string> {
    const bang = u.authuser.indexOf("!")
    const userid = bang < 0 ? u.authuser : u.authuser.slice(0, bang)
    const userPrivs = userid === "root@pam" ? new Set([...Object.values(ROLES).flat()]) : this.privsOf(userid, path)
    if (bang < 0) return userPrivs
    const token = this.tokens.get(u.authuser)
    if (token === undefined || !token.privsep) return userPrivs
    const tokenPrivs = this.privsOf(u.authuser, path)
    return new Set([...userPrivs].filter((p) => tokenPrivs.has(p)))
  }

  can(u: AuthUser, path: string, ...anyOf: ReadonlyArray<string>): boolean {
    if (u.via === "cli" || u.authuser === "root@pam") return true
    const p = this.privs(u, path)
    return anyOf.some((x) => p.has(x))
  }

  check(u: AuthUser, path: string, ...anyOf: ReadonlyArray<string>): void {
    if (!this.can(u, path, ...anyOf)) throw new PveError(403, `Permission check failed (${path}, ${anyOf.join("|")})`)
  }
}
