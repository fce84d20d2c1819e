/**
 * POSIX shell quoting. Every value interpolated into a remote command goes through {@link shellQuote}.
 *
 * @since 0.1.0
 */

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/

/**
 * Quotes one value for a POSIX shell (`sh`, `bash`, `dash`): the result is a single word that the shell turns back
 * into exactly the bytes of `value`, with no expansion (`$()`, backticks, globbing, `~`, newlines are all literal).
 *
 * Values made only of safe characters (`A-Za-z0-9_@%+=:,./-`) are returned as they are; everything else is wrapped
 * in single quotes, with each `'` written as `'\''`. The empty string becomes `''`.
 *
 * **Gotchas**: a NUL character cannot be passed through a shell argument at all, so it is rejected with a `TypeError`.
 *
 * @since 0.1.0
 * @category utilities
 */
export const shellQuote = (value: string): string => {
  if (value.includes("\u0000")) {
    throw new TypeError("shellQuote: the value contains a NUL character, which cannot be passed through a shell")
  }
  if (value === "") return "''"
  if (SAFE.test(value)) return value
  return `'${value.replaceAll("'", `'\\''`)}'`
}

/**
 * Builds a command line from an argument vector, quoting every element with {@link shellQuote}.
 *
 * ```ts
 * shellCommand(["mkdir", "-p", "/srv/my dir"]) // => "mkdir -p '/srv/my dir'"
 * ```
 *
 * @since 0.1.0
 * @category utilities
 */
export const shellCommand = (argv: ReadonlyArray<string>): string => argv.map(shellQuote).join(" ")
