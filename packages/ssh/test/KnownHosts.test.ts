import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { fingerprintOf, KnownHosts, keyTypeOf } from "../src/index.js"
import { generateKeyPair } from "../src/testing/index.js"

const blobOf = (publicLine: string): Buffer => Buffer.from(publicLine.split(" ")[1]!, "base64")

const keyA = blobOf(generateKeyPair("ed25519").public)
const keyB = blobOf(generateKeyPair("ed25519").public)
const keyA64 = keyA.toString("base64")
const keyB64 = keyB.toString("base64")

describe("fingerprintOf", () => {
  it("matches `ssh-keygen -l` for the same key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "homelab-fp-"))
    try {
      const file = path.join(dir, "key.pub")
      fs.writeFileSync(file, `ssh-ed25519 ${keyA64} test\n`)
      const printed = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file]).toString("utf8").split(" ")[1]
      assert.strictEqual(fingerprintOf(keyA), printed)
      assert.match(fingerprintOf(keyA), /^SHA256:[A-Za-z0-9+/]{43}$/)
      assert.strictEqual(keyTypeOf(keyA), "ssh-ed25519")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("KnownHosts", () => {
  const text = [
    "# a comment",
    "",
    `pve1.lan,10.0.0.5 ssh-ed25519 ${keyA64} root@pve1`,
    `[10.0.0.6]:2222 ssh-ed25519 ${keyB64}`,
    `*.example.org,!bad.example.org ssh-ed25519 ${keyA64}`,
    `@cert-authority *.lan ssh-ed25519 ${keyB64} ca`,
    `@revoked pve9.lan ssh-ed25519 ${keyB64}`,
    "garbage line",
    `host-with-bad-key ssh-ed25519 !!notbase64!!`
  ].join("\n")

  it("parses plain, bracketed, wildcard and marker lines, skipping comments and malformed ones", () => {
    const entries = KnownHosts.parse(text)
    assert.deepStrictEqual(
      entries.map((e) => [e.lineNumber, e.marker, e.hostField, e.keyType, e.comment]),
      [
        [3, undefined, "pve1.lan,10.0.0.5", "ssh-ed25519", "root@pve1"],
        [4, undefined, "[10.0.0.6]:2222", "ssh-ed25519", ""],
        [5, undefined, "*.example.org,!bad.example.org", "ssh-ed25519", ""],
        [6, "cert-authority", "*.lan", "ssh-ed25519", "ca"],
        [7, "revoked", "pve9.lan", "ssh-ed25519", ""]
      ]
    )
  })

  it("check: a key on a matching @revoked line is Revoked, even when a plain line records it too", () => {
    const revokedOnly = KnownHosts.parse(`@revoked 10.0.0.5 ssh-ed25519 ${keyA64}`)
    const verdict = KnownHosts.check(revokedOnly, "10.0.0.5", 22, keyA)
    assert.strictEqual(verdict._tag, "Revoked")
    if (verdict._tag === "Revoked") assert.strictEqual(verdict.entry.lineNumber, 1)
    const both = KnownHosts.parse(`10.0.0.5 ssh-ed25519 ${keyA64}\n@revoked * ssh-ed25519 ${keyA64}`)
    assert.strictEqual(KnownHosts.check(both, "10.0.0.5", 22, keyA)._tag, "Revoked")
    // Another key of the host is unaffected; so is the revoked key for a host the line does not name.
    assert.strictEqual(KnownHosts.check(revokedOnly, "10.0.0.5", 22, keyB)._tag, "Unknown")
    assert.strictEqual(KnownHosts.check(revokedOnly, "10.0.0.6", 22, keyA)._tag, "Unknown")
    assert.strictEqual(KnownHosts.check(revokedOnly, "10.0.0.5", 2222, keyA)._tag, "Unknown")
  })

  it("check: a @cert-authority line vouches for certificates only, never for a plain key", () => {
    const entries = KnownHosts.parse(`@cert-authority *.lan ssh-ed25519 ${keyA64}`)
    assert.strictEqual(KnownHosts.check(entries, "pve1.lan", 22, keyA)._tag, "Unknown")
    assert.deepStrictEqual(KnownHosts.keyTypesFor(entries, "pve1.lan"), [])
  })

  it("a line with an unknown or repeated marker is ignored, as OpenSSH ignores it", () => {
    assert.deepStrictEqual(KnownHosts.parse(`@trusted h ssh-ed25519 ${keyA64}`), [])
    assert.deepStrictEqual(KnownHosts.parse(`@revoked @revoked h ssh-ed25519 ${keyA64}`), [])
  })

  it("finds hosts by name, port, wildcard and negation; markers never match", () => {
    const entries = KnownHosts.parse(text)
    assert.deepStrictEqual(
      KnownHosts.find(entries, "10.0.0.5").map((e) => e.lineNumber),
      [3]
    )
    assert.deepStrictEqual(
      KnownHosts.find(entries, "PVE1.lan").map((e) => e.lineNumber),
      [3]
    )
    assert.deepStrictEqual(KnownHosts.find(entries, "10.0.0.5", 2222), [])
    assert.deepStrictEqual(
      KnownHosts.find(entries, "10.0.0.6", 2222).map((e) => e.lineNumber),
      [4]
    )
    assert.deepStrictEqual(KnownHosts.find(entries, "10.0.0.6"), [])
    assert.deepStrictEqual(
      KnownHosts.find(entries, "www.example.org").map((e) => e.lineNumber),
      [5]
    )
    assert.deepStrictEqual(KnownHosts.find(entries, "bad.example.org"), [])
    assert.deepStrictEqual(KnownHosts.find(entries, "pve9.lan"), [])
  })

  it("checks a presented key: Known, Mismatch (with the expected entry) or Unknown", () => {
    const entries = KnownHosts.parse(text)
    assert.strictEqual(KnownHosts.check(entries, "pve1.lan", 22, keyA)._tag, "Known")
    const mismatch = KnownHosts.check(entries, "pve1.lan", 22, keyB)
    assert.strictEqual(mismatch._tag, "Mismatch")
    if (mismatch._tag === "Mismatch") assert.strictEqual(KnownHosts.fingerprint(mismatch.expected), fingerprintOf(keyA))
    assert.strictEqual(KnownHosts.check(entries, "new.lan", 22, keyA)._tag, "Unknown")
  })

  it("adds plain and hashed entries that it finds again", () => {
    let file = KnownHosts.add(`no-trailing-newline ssh-ed25519 ${keyB64}`, "10.1.1.1", 22, keyA)
    file = KnownHosts.add(file, "10.1.1.2", 2200, keyB, { hash: true })
    const lines = file.trimEnd().split("\n")
    assert.strictEqual(lines.length, 3)
    assert.strictEqual(lines[1], `10.1.1.1 ssh-ed25519 ${keyA64}`)
    assert.match(lines[2]!, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /)
    assert.notInclude(lines[2]!, "10.1.1.2")
    const entries = KnownHosts.parse(file)
    assert.strictEqual(KnownHosts.check(entries, "10.1.1.2", 2200, keyB)._tag, "Known")
    assert.strictEqual(KnownHosts.check(entries, "10.1.1.2", 22, keyB)._tag, "Unknown")
  })

  it("removes a host's plain and hashed lines, keeping wildcard and marker lines", () => {
    let file = `${text}\n`
    file = KnownHosts.add(file, "pve1.lan", 22, keyB, { hash: true })
    file = KnownHosts.add(file, "bad.example.org", 22, keyB)
    const { text: after, removed } = KnownHosts.remove(file, "pve1.lan")
    assert.strictEqual(removed, 2)
    assert.deepStrictEqual(KnownHosts.find(KnownHosts.parse(after), "pve1.lan"), [])
    assert.include(after, "@cert-authority *.lan")
    assert.include(after, "*.example.org,!bad.example.org")
    assert.include(after, "# a comment")
    assert.strictEqual(KnownHosts.remove(after, "nothing.here").removed, 0)
  })
})
