import type { DesiredImage } from "./Desired.js"

/** The host of a URL, for messages (the URL itself when it does not parse). */
const hostOf = (url: string): string => {
  try {
    return new URL(url).host
  } catch {
    return url
  }
}

/**
 * A download PVE's task ended with `download failed: …` because of `image.url`: the server answered an HTTP error
 * (wget's `ERROR 404: Not Found`, or its exit code 8, "server issued an error response"), or the node could not reach
 * the server (exit code 4, a network failure; a name that does not resolve; a refused connection). What happened,
 * naming `image.url`, and what to check; undefined for any other failure (a full storage: the task log says it).
 */
export const downloadFailed = (
  a: { readonly node: string; readonly image: DesiredImage },
  exitstatus: string
): readonly [message: string, hint: string] | undefined => {
  const detail = /^download failed: (.*)$/su.exec(exitstatus)?.[1]?.trim()
  if (detail === undefined) return undefined
  const url = a.image.url
  const status = /\bERROR (\d{3})(?::\s*([^\n]*?))?\.?$/mu.exec(detail)
  if (status !== null || /\bexit code 8\b/u.test(detail)) {
    const code = Number(status?.[1] ?? 0)
    const answered = status === null ? "an error (wget exit code 8)" : `${status[1]}${status[2] ? ` ${status[2]}` : ""}`
    return [
      `${a.node} could not download image.url (${url}): the server answered ${answered}`,
      code === 404 || code === 410
        ? "check image.url: the file is not at that address (a typo, or a release the server no longer keeps?)"
        : code === 401 || code === 403
          ? "check image.url: its server refuses the file to the node (PVE downloads without credentials)"
          : `check image.url, and that its server serves it (the task log on ${a.node} has wget's output)`
    ]
  }
  if (/\bexit code 4\b|unable to resolve|Name or service not known|Connection refused|timed out/iu.test(detail)) {
    return [
      `${a.node} could not reach the server of image.url (${hostOf(url)}): ${detail}`,
      `check image.url's host, and that ${a.node} can resolve and reach it (DNS, route, proxy); or set image.transfer: upload, which fetches the image on this machine and uploads it to the nodes`
    ]
  }
  return undefined
}
