import { execFileSync } from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { isCryptHash, sha512Crypt } from "../src/internal/sha512Crypt.js"

const openssl = (password: string, salt: string) =>
  execFileSync("openssl", ["passwd", "-6", "-salt", salt, "-stdin"], { input: password }).toString().trim()

describe("sha512Crypt", () => {
  it("matches openssl passwd -6 for short, long, unicode and shell-hostile passwords", () => {
    for (const [password, salt] of [
      ["Hello world!", "saltstring"],
      ["hunter2", "abcdefghijklmnop"],
      ["x".repeat(200), "./09AZaz"],
      ["pässwörd – ✓", "Q7"],
      ["it's $(rm -rf /) `x` \\n", "0123456789abcdef"]
    ] as const) {
      assert.strictEqual(sha512Crypt(password, salt), openssl(password, salt), `${password} / ${salt}`)
    }
  })

  it("matches the glibc reference vector", () => {
    assert.strictEqual(
      sha512Crypt("Hello world!", "saltstring"),
      "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
    )
  })

  it("salts randomly by default, and recognises crypt hashes", () => {
    const a = sha512Crypt("same")
    const b = sha512Crypt("same")
    assert.notStrictEqual(a, b)
    assert.isTrue(isCryptHash(a))
    assert.isFalse(isCryptHash("plain password"))
  })
})

describe("pveshCommand and secrets", () => {
  it("sends cipassword as a SHA-512-crypt hash, never as the password", async () => {
    const { Redacted } = await import("effect")
    const { pveshCommand } = await import("../src/SshTransport.js")
    const command = pveshCommand({
      method: "PUT",
      path: "/nodes/pve/qemu/100/config",
      params: { cipassword: Redacted.make("hunter2"), ciuser: "ubuntu" }
    })
    assert.notInclude(command, "hunter2")
    const hash = /--cipassword '(\$6\$[^']+)'/.exec(command)?.[1] ?? ""
    const salt = hash.split("$")[2] ?? ""
    assert.strictEqual(hash, openssl("hunter2", salt))
  })
})
