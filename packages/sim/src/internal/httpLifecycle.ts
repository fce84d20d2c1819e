import type * as http from "node:http"

/** Listens on `host:port` (0 = ephemeral) and resolves with the port actually bound. */
export const listenHttp = (server: http.Server, host: string, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      const a = server.address()
      resolve(typeof a === "object" && a !== null ? a.port : port)
    })
  })

/** Closes the server and every open connection (keep-alive clients included). */
export const closeHttp = (server: http.Server): Promise<void> => {
  server.closeAllConnections()
  return new Promise((resolve) => server.close(() => resolve()))
}
