// ssh2's key parser on its own: the CommonJS module whose `parseKey` ssh2 exports as `utils.parseKey`. LoadedConfig.ts
// imports it alone to check the SSH key without loading the rest of ssh2 (its client), which a run loads when it
// connects. Its exports are the default export (`module.exports`), in Node as in the bundle.
declare module "ssh2/lib/protocol/keyParser.js" {
  import type { utils } from "ssh2"

  const keyParser: { readonly parseKey: typeof utils.parseKey }
  export default keyParser
}
