// The bundle's stand-in for undici. proxmox-api imports undici's `fetch` only as the default of its `fetch` option,
// and homelab always passes its own (proxmox-client's TlsTrust, over node:https): bundling undici for a default that
// never runs would cost every run about 25 MiB of memory and 150 ms of CPU to load it.
export const fetch = (): never => {
  throw new Error("proxmox-api was not given a fetch (homelab always passes proxmox-client's)")
}
