import { Schema } from "effect"
import { HomelabConfigSchema } from "./HomelabConfigSchema.js"

/**
 * A JSON Schema (draft 2020-12) of `homelab.yaml` for editors (yaml-language-server: add
 * `# yaml-language-server: $schema=<path>` to the file). Generated from the same Effect Schema that `parseConfig`
 * decodes with, so unknown keys are rejected (`additionalProperties: false`) and fields carry their descriptions
 * and defaults. The editor sees the file before `${ENV}` interpolation; `parseConfig` stays the final authority
 * (cross-field rules such as unique node names are not expressible here).
 */
export const configJsonSchema = (): Record<string, unknown> => {
  const document = Schema.toJsonSchemaDocument(HomelabConfigSchema, { onExcessProperty: "error" })
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    ...document.schema,
    ...(Object.keys(document.definitions).length > 0 ? { $defs: document.definitions } : {})
  }
}
