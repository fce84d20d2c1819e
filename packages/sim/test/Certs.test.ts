import { assert, describe, it } from "@effect/vitest"
import { utils } from "ssh2"
import { generateSshKey } from "../src/Certs.js"

describe("generateSshKey", () => {
  // ssh2's own generator writes about 1 ed25519 key in 250 that nobody can read (a leading zero byte of the public
  // key stripped); among 2,000 keys at least one such key comes up with probability ≈ 99.97 %.
  it("every guest host key it makes parses, private and public alike (2,000 keys)", () => {
    for (let i = 0; i < 2000; i++) {
      const pair = generateSshKey("root@guest")
      assert.notInstanceOf(utils.parseKey(pair.privateKey), Error, pair.privateKey)
      const blob = Buffer.from(pair.publicKey.split(" ")[1] ?? "", "base64")
      assert.strictEqual(blob.readUInt32BE(15), 32)
    }
  })
})
