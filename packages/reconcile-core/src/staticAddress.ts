/**
 * The static IPv4 address of a PVE `ipconfig0` value (`ip=10.0.0.5/24,gw=10.0.0.1`): the address cloud-init gives the
 * guest when PVE starts it. `undefined` for `ip=dhcp`, an IPv6-only setting, no setting, or one that cannot be read.
 */
export const staticAddress = (ipconfig0: string | undefined): string | undefined => {
  const ip = /(?:^|,)\s*ip=([^,/]+)\/\d{1,2}\s*(?:,|$)/.exec(ipconfig0 ?? "")?.[1]?.trim()
  return ip !== undefined && /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) ? ip : undefined
}
