import type { GuestCommandContext, GuestCommandResult } from "../Guest.js"
import { tokenize } from "../internal/Shell.js"
import { k3sBinary } from "./K3sOrigin.js"
import { BIN, type K3sSim, writeInstallFiles } from "./K3sSim.js"

const info = (m: string) => `[INFO]  ${m}\n`

/** install.sh's `escape`: a backslash before most punctuation, not before quotes, `/` and whitespace. */
const escapeForEval = (s: string): string => s.replace(/([\][!#$%&()*;<=>?\\_`{|}])/g, "\\$1")

/**
 * The k3s arguments install.sh builds from `INSTALL_K3S_EXEC` and its own arguments:
 * `eval set -- $(escape "${INSTALL_K3S_EXEC}") $(quote "$@")`. The unquoted command substitution splits the escaped
 * text on whitespace, `eval` then parses it again: quotes in `INSTALL_K3S_EXEC` group words (`--node-label "a=b c"`
 * is one argument), escaped punctuation stays literal (inside double quotes a backslash before a character other than
 * `$`, `` ` ``, `"`, `\` stays: `"a_b"` becomes `a\_b`). Positional arguments are kept as given.
 *
 * @returns the words, or dash's error for unbalanced quotes
 */
export const installExecWords = (
  exec: string,
  positional: ReadonlyArray<string>
): { readonly words: ReadonlyArray<string> } | { readonly error: string } => {
  const fields = escapeForEval(exec)
    .split(/[ \t\n]+/)
    .filter((w) => w !== "")
  let words: Array<string> = []
  try {
    words = tokenize(fields.join(" ")).map((t) => ("word" in t ? t.word : t.op))
  } catch {
    return { error: "sh: 1: eval: Syntax error: Unterminated quoted string" }
  }
  return { words: [...words, ...positional] }
}

const unitPath = (unit: string) => `/etc/systemd/system/${unit}.service`

/** Simulated `install.sh`: decisions and console output of k3s.md §1.2–§1.8 (k3s-io/k3s install.sh), then the unit start (blocking). */
export const installScript = async (
  sim: K3sSim,
  c: GuestCommandContext,
  positional: ReadonlyArray<string>
): Promise<GuestCommandResult> => {
  const env = c.env
  const g = c.guest
  let out = ""
  let err = ""
  const fatal = (m: string) => ({ stdout: out, stderr: `${err}[ERROR]  ${m}\n`, code: 1 })
  const parsed = installExecWords(env.INSTALL_K3S_EXEC ?? "", positional)
  if ("error" in parsed) return { stdout: "", stderr: `${parsed.error}\n`, code: 2 }
  const args = [...parsed.words]
  // setup_env: the command word (and the token check when it defaults to agent), then verify_k3s_url
  const url = env.K3S_URL ?? ""
  let cmd: string
  const first = args[0]
  if (first === undefined || first === "" || first.startsWith("-")) {
    if (url !== "") {
      if ((env.K3S_TOKEN ?? "") === "" && (env.K3S_TOKEN_FILE ?? "") === "")
        return fatal(
          "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
        )
      cmd = "agent"
    } else cmd = "server"
    args.unshift(cmd)
  } else cmd = first
  if (url !== "" && !url.startsWith("https://"))
    return fatal(`Only https:// URLs are supported for K3S_URL (have ${url})`)
  const name = env.INSTALL_K3S_NAME
  const systemName = name !== undefined && name !== "" ? `k3s-${name}` : cmd === "server" ? "k3s" : `k3s-${cmd}`
  if (/[\][!#$%&()*;<=>?\\_`{|}/\s]/.test(systemName)) {
    const marks = systemName.replace(/[\][!#$%&()*;<=>?\\_`{|}/\s]/g, "^").replace(/[^^]/g, " ")
    return fatal(`Invalid characters for system name:\n            ${systemName}\n            ${marks}`)
  }
  const unit = systemName
  if (cmd !== "server" && cmd !== "agent") return fatal(`Unsupported k3s command in the simulator: ${cmd}`)
  const role: "server" | "agent" = cmd
  const h = sim.host(g)
  const hashes = () => [g.files.get(BIN), g.files.get(unitPath(unit)), g.files.get(`${unitPath(unit)}.env`)].join("\0")
  const before = hashes()

  // download_and_verify
  const skip = env.INSTALL_K3S_SKIP_DOWNLOAD === "true" || env.INSTALL_K3S_SKIP_DOWNLOAD === "binary"
  let version: string | undefined
  if (skip) {
    out += info("Skipping k3s download and verify")
    if (!g.files.has(BIN)) return fatal(`Executable k3s binary not found at ${BIN}`)
  } else {
    if ((env.INSTALL_K3S_VERSION ?? "") !== "") version = env.INSTALL_K3S_VERSION as string
    else {
      const channel = env.INSTALL_K3S_CHANNEL || "stable"
      out += info(`Finding release for channel ${channel}`)
      // `curl -w '%{url_effective}' -L … | sed -e 's|.*/||'`: an unknown channel (404) leaves the channel URL, so the
      // "release" is the channel's own name and the download below fails
      const channelUrl = env.INSTALL_K3S_CHANNEL_URL || "https://update.k3s.io/v1-release/channels"
      const known = channelUrl === "https://update.k3s.io/v1-release/channels" && !sim.downloadFails(g.vmid)
      version = (known ? sim.releases.channel(channel) : undefined) ?? channel
    }
    const gh = env.GITHUB_URL || "https://github.com/k3s-io/k3s/releases"
    out += info(`Using ${version} as release`)
    out += info(`Downloading hash ${gh}/download/${version}/sha256sum-amd64.txt`)
    const available = gh === "https://github.com/k3s-io/k3s/releases" && sim.releases.has(version)
    if (sim.downloadFails(g.vmid) || !available) return fatal("Download failed")
    if (g.files.get(BIN) === k3sBinary(version)) out += info("Skipping binary downloaded, installed k3s matches hash")
    else {
      out += info(`Downloading binary ${gh}/download/${version}/k3s`)
      out += info("Verifying binary download")
      out += info(`Installing k3s to ${BIN}`)
    }
  }
  out += info("Skipping installation of SELinux RPM")
  for (const l of ["kubectl", "crictl", "ctr"])
    out += g.files.has(`/usr/local/bin/${l}`)
      ? info(`Skipping /usr/local/bin/${l} symlink to k3s, already exists`)
      : info(`Creating /usr/local/bin/${l} symlink to k3s`)
  out += info("Creating killall script /usr/local/bin/k3s-killall.sh")
  out += info(`Creating uninstall script /usr/local/bin/${unit}-uninstall.sh`)
  out += info(`env: Creating environment file ${unitPath(unit)}.env`)
  out += info(`systemd: Creating service file ${unitPath(unit)}`)
  const envVars = Object.fromEntries(
    Object.entries(env).filter(([k]) => /^(K3S_|CONTAINERD_)/.test(k) || /^(https?|no)_proxy$/i.test(k))
  )
  // the unit and env file are regenerated from scratch (options not given again are lost)
  writeInstallFiles(g, unit, args, envVars, version)
  h.installed = { role, unit, args }
  if (!g.services.has(unit)) g.services.set(unit, "inactive")
  const after = hashes()
  if (env.INSTALL_K3S_SKIP_ENABLE === "true") return { stdout: out, stderr: err, code: 0 }
  out += info(`systemd: Enabling ${unit} unit`)
  err += `Created symlink /etc/systemd/system/multi-user.target.wants/${unit}.service → ${unitPath(unit)}.\n`
  h.enabled = true
  if (env.INSTALL_K3S_SKIP_START === "true") return { stdout: out, stderr: err, code: 0 }
  if (before === after && env.INSTALL_K3S_FORCE_RESTART !== "true") {
    out += info("No change detected so skipping service start")
    return { stdout: out, stderr: err, code: 0 }
  }
  out += info(`systemd: Starting ${unit}`)
  const r = await sim.wait(sim.start(h))
  if (r === "ready") return { stdout: out, stderr: err, code: 0 }
  return {
    stdout: out,
    stderr: `${err}Job for ${unit}.service failed because the control process exited with error code.\nSee "systemctl status ${unit}.service" and "journalctl -xeu ${unit}.service" for details.\n`,
    code: 1
  }
}
