/**
 * Test helpers of `@homelab/ssh`: an in-process SSH server on 127.0.0.1.
 *
 * @since 0.1.0
 */
export {
  generateKeyPair,
  type TestExecHandler,
  type TestExecReply,
  TestSshServer,
  type TestSshServerOptions,
  type TestSshUser
} from "./TestSshServer.js"
