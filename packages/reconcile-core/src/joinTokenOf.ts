import { parseJoinToken } from "@homelab/k3s-join"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"

/**
 * The token a VM's join passes to k3s-join, from homelab.yaml's `k3s.token`: that token when it is a full one
 * (`K10<CA hash>::…`, malformed ones included, which k3s-join then refuses with its reason) or a bootstrap token;
 * `undefined` for a short one (a password, as `k3s server --token` takes it and as the cluster was started with). k3s
 * takes a short token on a join too, but then never checks the server's certificate: with `undefined`, k3s-join
 * reads the cluster's full token (the same password, with the hash of the cluster's CA) from the server over SSH.
 */
export const joinTokenOf = (token: Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined => {
  if (token === undefined) return undefined
  return Redacted.value(token).trim().startsWith("K10") || Result.isSuccess(parseJoinToken(token)) ? token : undefined
}

/**
 * homelab.yaml's `k3s.token` when it is a short one (a password, which `joinTokenOf` does not pass on): the password
 * the server token a join reads must have (`EnsureMemberOptions.tokenPassword`), so that a `k3s.token` that is not the
 * cluster's is said as a full one that differs would be, instead of joining with whatever token the server has.
 */
export const tokenPasswordOf = (token: Redacted.Redacted<string> | undefined): Redacted.Redacted<string> | undefined =>
  token !== undefined && joinTokenOf(token) === undefined && Redacted.value(token).trim() !== "" ? token : undefined
