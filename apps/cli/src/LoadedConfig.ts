import { X509Certificate } from "node:crypto"
import { readdir, readFile, stat } from "node:fs/promises"
import os from "node:os"
import path from "node:path"
import {
  type ConfigWarning,
  configSha256,
  formatConfigWarning,
  type HomelabConfig,
  parseConfigWithWarnings
} from "@homelab/reconcile-core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { CommandFailed } from "./CommandFailed.js"
import { ExitCode } from "./ExitCode.js"
import type { EventStream } from "./render/EventStream.js"
import { configWarningEvent } from "./render/Events.js"

/** homelab.yaml loaded for a run: the config, where it came from, and the files it names, read and checked. */
export interface LoadedConfig {
  readonly path: string
  readonly config: HomelabConfig
  /** Public key lines for cloud-init (`vm.sshKeys` entries that are `*.pub` paths are read). */
  readonly sshKeys: ReadonlyArray<string>
  /** One line per file the config names, as checked (`ssh.privateKey ~/.ssh/id_ed25519: ssh-ed25519 private key`). */
  readonly files: ReadonlyArray<string>
  /** The SHA-256 of the file's text, as read (a saved plan records it). */
  readonly sha256: string
  /**
   * What works but is worth changing: a secret written as its value, `ssh.user` other than root. `warnConfig` prints
   * them (`warningLines`) and streams them as `warning` events.
   */
  readonly warnings: ReadonlyArray<ConfigWarning>
}

/** The warnings as stderr shows them, one line each (`homelab.yaml:19:13 proxmox.auth.secret: a secret …`). */
export const warningLines = (loaded: LoadedConfig): ReadonlyArray<string> =>
  loaded.warnings.map((warning) => formatConfigWarning(path.basename(loaded.path), warning))

/**
 * Prints the config's warnings on stderr, one `warning: …` line each (stdout stays the command's output, a --json
 * document included): every command that reads homelab.yaml calls it once, right after loading (`demo` writes its own).
 * A command streaming NDJSON (`events`) also emits each as a `warning` event.
 */
export const warnConfig = (loaded: LoadedConfig, events?: EventStream) =>
  Effect.gen(function* () {
    yield* Effect.forEach(warningLines(loaded), (line) => Console.error(`warning: ${line}`), { discard: true })
    if (events === undefined) return
    const file = path.basename(loaded.path)
    for (const warning of loaded.warnings) events.emit(configWarningEvent(file, warning))
  })

/** `~/x` → `$HOME/x`; relative paths are taken from the config file's folder. */
export const resolvePath = (configPath: string, file: string): string => {
  const expanded = file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file
  return path.resolve(path.dirname(configPath), expanded)
}

/** Why a file could not be read, in words (`no such file`, `a directory, not a file`, `permission denied`). */
export const reasonOf = (error: unknown): string => {
  const code = (error as NodeJS.ErrnoException).code
  return code === "ENOENT"
    ? "no such file"
    : code === "EACCES" || code === "EPERM"
      ? "permission denied"
      : code === "EISDIR"
        ? "a directory, not a file"
        : String((error as Error).message)
}

type Read = { readonly text: string } | { readonly problem: string }

const readText = async (file: string): Promise<Read> => {
  try {
    return { text: await readFile(file, "utf8") }
  } catch (error) {
    return { problem: reasonOf(error) }
  }
}

type ParsedKey = { isPrivateKey(): boolean; readonly type: string }

/**
 * ssh2's key parser, loaded on first use and alone (the only module of ssh2 the config check needs): ssh2's client is
 * loaded by the first connection, while a run's first HTTPS requests are in flight, not before them.
 */
const parseKey = async (text: string, passphrase: string | undefined): Promise<ParsedKey | Error> => {
  const { default: keyParser } = await import("ssh2/lib/protocol/keyParser.js")
  const parsed = keyParser.parseKey(text, passphrase)
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  return key ?? new Error("no key found")
}

const isKeyLine = (line: string): boolean => /^(ssh-|ecdsa-|sk-)/u.test(line.trim())

/**
 * Checks every file homelab.yaml names, the way the run will use it, and reads the public keys for the VMs. Returns
 * the problems (field: what is wrong, what to do), all of them.
 */
const inspectFiles = async (configPath: string, config: HomelabConfig) => {
  const problems: Array<string> = []
  const files: Array<string> = []
  const sshKeys: Array<string> = []
  const at = (file: string) => resolvePath(configPath, file)

  // ssh.privateKey: every SSH connection (node fallback, image import, k3s) loads it first.
  const keyPath = at(config.ssh.privateKey)
  const keyFile = await readText(keyPath)
  if ("problem" in keyFile) {
    problems.push(
      `ssh.privateKey: cannot read ${keyPath}: ${keyFile.problem} (create one with \`ssh-keygen -t ed25519\`, or point ssh.privateKey at your key)`
    )
  } else {
    const passphrase = config.ssh.passphrase === undefined ? undefined : Redacted.value(config.ssh.passphrase)
    const key = await parseKey(keyFile.text, passphrase)
    if (key instanceof Error) {
      problems.push(
        /no passphrase given/iu.test(key.message)
          ? `ssh.privateKey: ${keyPath} is protected by a passphrase and ssh.passphrase is not set (write passphrase: \${SSH_KEY_PASSPHRASE} under ssh: and export SSH_KEY_PASSPHRASE)`
          : /passphrase|decrypt|integrity/iu.test(key.message) && passphrase !== undefined
            ? `ssh.passphrase does not decrypt ssh.privateKey ${keyPath} (${key.message})`
            : `ssh.privateKey: ${keyPath} is not an SSH private key that homelab can use (OpenSSH, PEM or PuTTY format): ${key.message}`
      )
    } else if (!key.isPrivateKey()) {
      problems.push(
        `ssh.privateKey: ${keyPath} is a public key; name the private key file (usually the same name without .pub)`
      )
    } else
      files.push(`ssh.privateKey ${config.ssh.privateKey}: ${key.type} private key${passphrase ? " (decrypted)" : ""}`)
  }

  // proxmox.tls.ca: the PEM the API certificates are checked against.
  if (config.proxmox.tls.mode === "ca") {
    const caPath = at(config.proxmox.tls.ca)
    const ca = await readText(caPath)
    if ("problem" in ca) {
      problems.push(
        `proxmox.tls.ca: cannot read ${caPath}: ${ca.problem} (copy the cluster CA from a node: /etc/pve/pve-root-ca.pem)`
      )
    } else {
      const pems = ca.text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/gu) ?? []
      const valid = pems.filter((pem) => {
        try {
          new X509Certificate(pem)
          return true
        } catch {
          return false
        }
      })
      if (valid.length === 0) {
        problems.push(
          `proxmox.tls.ca: ${caPath} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----, like /etc/pve/pve-root-ca.pem)`
        )
      } else files.push(`proxmox.tls.ca ${config.proxmox.tls.ca}: ${valid.length} certificate(s)`)
    }
  }

  // ssh.knownHosts.file: strict mode only trusts hosts already in it.
  const knownHostsPath = at(config.ssh.knownHosts.file)
  if (config.ssh.knownHosts.mode !== "off") {
    const knownHosts = await readText(knownHostsPath)
    if ("problem" in knownHosts) {
      if (config.ssh.knownHosts.mode === "strict" || knownHosts.problem !== "no such file") {
        problems.push(
          `ssh.knownHosts.file: cannot read ${knownHostsPath}: ${knownHosts.problem}${config.ssh.knownHosts.mode === "strict" ? " (strict mode needs the nodes' keys in it: add them with ssh-keyscan, or use mode: accept-new)" : ""}`
        )
      }
    }
  }

  // vm.sshKeys: *.pub files are read here and their keys given to cloud-init; never a private key.
  for (const [i, entry] of config.vm.sshKeys.entries()) {
    if (isKeyLine(entry)) {
      sshKeys.push(entry.trim())
      continue
    }
    const pubPath = at(entry)
    const pub = await readText(pubPath)
    if ("problem" in pub) {
      problems.push(`vm.sshKeys[${i}]: cannot read ${pubPath}: ${pub.problem}`)
      continue
    }
    const lines = pub.text.split("\n").filter((line) => line.trim() !== "" && !line.trim().startsWith("#"))
    const keys = lines.filter(isKeyLine)
    if (pub.text.includes("PRIVATE KEY")) {
      problems.push(`vm.sshKeys[${i}]: ${pubPath} holds a private key; name the .pub file next to it`)
    } else if (keys.length === 0 || keys.length !== lines.length) {
      problems.push(
        `vm.sshKeys[${i}]: ${pubPath} is not a public key file (one key per line: ssh-ed25519 AAAA... comment)`
      )
    } else {
      sshKeys.push(...keys.map((key) => key.trim()))
      files.push(`vm.sshKeys[${i}] ${entry}: ${keys.length} public key(s)`)
    }
  }

  // k3s.airgap: the binary and install.sh are uploaded from here.
  if (config.k3s?.airgap !== undefined) {
    const dir = at(config.k3s.airgap)
    try {
      if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error("not a directory"), { code: "ENOTDIR" })
      const names = new Set(await readdir(dir))
      const missing = ["k3s", "install.sh"].filter((name) => !names.has(name))
      if (missing.length > 0) {
        problems.push(`k3s.airgap: ${dir} has no ${missing.join(" and no ")} (it needs the k3s binary and install.sh)`)
      } else files.push(`k3s.airgap ${config.k3s.airgap}: k3s and install.sh`)
    } catch (error) {
      problems.push(
        `k3s.airgap: cannot read ${dir}: ${(error as NodeJS.ErrnoException).code === "ENOTDIR" ? "not a directory" : reasonOf(error)}`
      )
    }
  }
  return { problems, files, sshKeys }
}

/** Reads and validates homelab.yaml with the process environment for `${VAR}` references, and every file it names. */
export const loadConfig = Effect.fn("loadConfig")(function* (
  configPath: string,
  env: Record<string, string | undefined>
) {
  const absolute = path.resolve(configPath)
  const file = yield* Effect.promise(() => readText(absolute))
  if ("problem" in file) {
    return yield* new CommandFailed({
      userMessage: `cannot read config file ${absolute}: ${file.problem}`,
      exitCode: ExitCode.Config,
      ...(file.problem === "no such file"
        ? {
            hint: "create one (see homelab.example.yaml in @homelab/reconcile-core), convert a seed .env with `homelab config import-env .env > homelab.yaml`, or pass --config PATH"
          }
        : {})
    })
  }
  const { config, warnings } = yield* parseConfigWithWarnings(file.text, { env, source: path.basename(absolute) }).pipe(
    Effect.mapError(
      (error) =>
        new CommandFailed({
          userMessage: error.message,
          exitCode: ExitCode.Config,
          code: error.reason._tag === "ConfigMissingVariables" ? "config-missing-variables" : "config-invalid"
        })
    )
  )
  const checked = yield* Effect.promise(() => inspectFiles(absolute, config))
  if (checked.problems.length > 0) {
    const count = checked.problems.length
    return yield* new CommandFailed({
      userMessage: `${path.basename(absolute)}: ${count} problem${count === 1 ? "" : "s"} with the files it names\n${checked.problems.map((p) => `  ${p}`).join("\n")}`,
      exitCode: ExitCode.Config,
      code: "config-files"
    })
  }
  return {
    path: absolute,
    config,
    sshKeys: checked.sshKeys,
    files: checked.files,
    sha256: configSha256(file.text),
    warnings
  } satisfies LoadedConfig
})
