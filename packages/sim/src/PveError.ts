/**
 * An API failure as PVE reports it: an HTTP status, a message (first line = status-line reason phrase) and, for
 * parameter verification failures, a per-parameter `errors` map.
 */
export class PveError extends Error {
  readonly status: number
  readonly errors: Record<string, string> | undefined
  constructor(status: number, message: string, errors?: Record<string, string>) {
    super(message)
    this.name = "PveError"
    this.status = status
    this.errors = errors
  }

  static param(errors: Record<string, string>): PveError {
    return new PveError(400, "Parameter verification failed.", errors)
  }

  static die(message: string): PveError {
    return new PveError(500, message)
  }
}

/** Status-line reason phrase: first line of the message, without the trailing newline. */
export const reasonPhrase = (message: string): string => {
  const first = message.split(/\r?\n/)[0] ?? ""
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strip control characters from the status line
  return first.replace(/[\u0000-\u001f\u007f]/g, " ")
}
