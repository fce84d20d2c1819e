// biome-ignore-all lint/suspicious/noTemplateCurlyInString: this file deals with literal ${VAR} references
import { assert } from "@effect/vitest"
import { Ajv2020 } from "ajv/dist/2020.js"
import * as Effect from "effect/Effect"
import { parse } from "yaml"
import type { ConfigError } from "../../src/config/ConfigError.js"
import type { ConfigIssue } from "../../src/config/ConfigIssue.js"
import { configJsonSchema } from "../../src/config/configJsonSchema.js"
import type { HomelabConfig } from "../../src/config/HomelabConfig.js"
import { parseConfig } from "../../src/config/parseConfig.js"

export const secretValue = "9f1c2e4a-secret-token-value"

export const baseEnv: Record<string, string> = { PROXMOX_TOKEN_SECRET: secretValue }

/** A valid minimal document; tests append or replace sections. */
export const minimal = `proxmox:
  endpoint: https://pve1.lan
  auth:
    tokenId: root@pam!homelab
    secret: \${PROXMOX_TOKEN_SECRET}
image:
  url: https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img
nodes:
  - name: pve1
`

// ---------------------------------------------------------------------------------------------- JSON Schema

/** ajv, draft 2020-12, strict about the schema's own keywords (a typo in configJsonSchema fails here). */
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictRequired: false })
export const validateWithSchema = ajv.compile(configJsonSchema())

/**
 * What an editor with the JSON Schema says about `text` (the file before interpolation): the schema's errors, `[]`
 * when it validates, `undefined` when the text is not YAML an editor could check against a schema at all.
 */
export const schemaErrors = (text: string): Array<string> | undefined => {
  let data: unknown
  try {
    data = parse(text, { merge: true, uniqueKeys: true, maxAliasCount: 10_000 })
  } catch {
    return undefined
  }
  if (validateWithSchema(data)) return []
  return (validateWithSchema.errors ?? []).map((error) => `${error.instancePath || "/"} ${error.message ?? ""}`)
}

/**
 * How the JSON Schema must judge a document `parseConfig` rejects: `"rejects"` (the default), or
 * `{ checkOnly: why }` when every problem in it is one only `parseConfig` can see (a missing variable, a rule that
 * compares values across the document). The helper asserts that verdict, so the two stay in step both ways.
 */
export type SchemaVerdict = "rejects" | { readonly checkOnly: string }

const assertSchema = (text: string, expected: "accepts" | SchemaVerdict) => {
  const errors = schemaErrors(text)
  if (expected === "accepts") {
    assert.deepStrictEqual(errors, [], "the JSON Schema rejects a document parseConfig accepts")
  } else if (expected === "rejects") {
    if (errors !== undefined) assert.isAbove(errors.length, 0, "the JSON Schema accepts a document parseConfig rejects")
  } else {
    assert.deepStrictEqual(errors, [], `config-check-only case (${expected.checkOnly}) rejected by the JSON Schema`)
  }
}

/** parseConfig that must succeed; the JSON Schema must accept the same text. */
export const parseOk = (text: string, env: Record<string, string | undefined> = baseEnv) =>
  Effect.sync(() => assertSchema(text, "accepts")).pipe(Effect.andThen(parseConfig(text, { env })))

/** parseConfig that must fail (returns the error); the JSON Schema must judge the same text as `schema` says. */
export const parseErr = (
  text: string,
  env: Record<string, string | undefined> = baseEnv,
  schema: SchemaVerdict = "rejects"
): Effect.Effect<ConfigError, HomelabConfig> =>
  Effect.sync(() => assertSchema(text, schema)).pipe(Effect.andThen(Effect.flip(parseConfig(text, { env }))))

export const issueAt = (error: ConfigError, path: string): ConfigIssue | undefined =>
  error.issues.find((issue) => issue.path === path)
