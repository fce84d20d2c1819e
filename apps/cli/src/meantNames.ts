import { closestName } from "@homelab/reconcile-core"

/**
 * The names given with each one `known` lacks replaced by the known name it is a typo of (`stil-fawn` → `still-fawn`),
 * for a "did you mean"; undefined unless every unknown name is one, since a guess for some would still be refused.
 */
export const meantNames = (
  given: ReadonlyArray<string>,
  known: ReadonlyArray<string>
): ReadonlyArray<string> | undefined => {
  const meant = given.map((name) => (known.includes(name) ? name : closestName(name, known)))
  return meant.every((name) => name !== undefined) ? [...new Set(meant)] : undefined
}
