/** Derivations shared by the cross-field checks (on raw data) and the resolver (on decoded data). */
import { type ChecksumAlgorithm, checksumAlgorithms, checksumHexLength } from "./formats.js"

export const placeholdersOf = (template: string): Array<string> =>
  [...template.matchAll(/\{([^{}]*)\}/gu)].map((match) => match[1] ?? "")

export const expandTemplate = (template: string, node: string, index: number): string =>
  template.replaceAll("{node}", () => node).replaceAll("{index}", () => String(index))

export type ParsedChecksum =
  | { readonly _tag: "Ok"; readonly algorithm: ChecksumAlgorithm; readonly value: string }
  | {
      readonly _tag: "Error"
      readonly field: "checksum" | "checksumAlgorithm"
      readonly code: "invalid-value" | "conflict" | "missing-key"
      readonly expected: string
    }

const isAlgorithm = (value: string): value is ChecksumAlgorithm => (checksumAlgorithms as Array<string>).includes(value)

/** `sha256:<hex>` or `<hex>` + `checksumAlgorithm`; hex length must match the algorithm. */
export const parseChecksum = (checksum: string, algorithmField: string | undefined): ParsedChecksum => {
  const colon = checksum.indexOf(":")
  let algorithm: string | undefined = algorithmField
  let hex = checksum
  if (colon >= 0) {
    const prefix = checksum.slice(0, colon).toLowerCase()
    hex = checksum.slice(colon + 1)
    if (!isAlgorithm(prefix)) {
      return {
        _tag: "Error",
        field: "checksum",
        code: "invalid-value",
        expected: `an algorithm prefix out of ${checksumAlgorithms.join(", ")} (like sha256:<hex>)`
      }
    }
    if (algorithmField !== undefined && algorithmField !== prefix) {
      return {
        _tag: "Error",
        field: "checksumAlgorithm",
        code: "conflict",
        expected: `the same algorithm as the checksum prefix (${prefix}), or no checksumAlgorithm`
      }
    }
    algorithm = prefix
  }
  if (algorithm === undefined || !isAlgorithm(algorithm)) {
    return {
      _tag: "Error",
      field: "checksumAlgorithm",
      code: "missing-key",
      expected: `checksumAlgorithm (${checksumAlgorithms.join(", ")}) for a plain-hex checksum, or write sha256:<hex>`
    }
  }
  const length = checksumHexLength[algorithm]
  if (!new RegExp(`^[0-9a-fA-F]{${length}}$`, "u").test(hex)) {
    return {
      _tag: "Error",
      field: "checksum",
      code: "invalid-value",
      expected: `${length} hex digits for ${algorithm}`
    }
  }
  return { _tag: "Ok", algorithm, value: hex.toLowerCase() }
}

/** Tags the way PVE stores them: lowercase, sorted, deduplicated. */
export const normaliseTags = (tags: ReadonlyArray<string>): Array<string> =>
  [...new Set(tags.map((tag) => tag.toLowerCase()))].sort()
