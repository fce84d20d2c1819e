import { assert, describe, it } from "@effect/vitest"
import { utils } from "ssh2"
import { generateKeyPair } from "../../src/testing/index.js"

describe("generateKeyPair", () => {
  // ssh2's own generator writes about 1 ed25519 key in 250 with a 31-byte public key (a leading zero byte stripped);
  // among 2,000 keys at least one such key comes up with probability 1 − (249/250)^2000 ≈ 99.97 %.
  it("every ed25519 key it writes parses back to its own public key (2,000 keys)", () => {
    for (let i = 0; i < 2000; i++) {
      const pair = generateKeyPair("ed25519")
      const parsed = utils.parseKey(pair.private)
      assert.notInstanceOf(parsed, Error, pair.private)
      const key = Array.isArray(parsed) ? parsed[0] : parsed
      const blob = Buffer.from(pair.public.split(" ")[1] ?? "", "base64")
      assert.deepStrictEqual(key.getPublicSSH(), blob)
      // string "ssh-ed25519" (4 + 11 bytes), then string key: 32 bytes
      assert.strictEqual(blob.readUInt32BE(15), 32)
    }
  })
})
