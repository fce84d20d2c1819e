/**
 * One read for many pollers: callers that poll the same thing (e.g. the Nodes of one server, while several hosts wait
 * for theirs) each ask for a result newer than the one they have, and get the newest read of anyone's when it is
 * (finished, or still in flight), or else a read of their own. Each poll still sees newer data than the poll before
 * it, and the server answers about one read per poll interval instead of one per poller.
 *
 * @since 0.6.1
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"

interface Read<A, E> {
  readonly startedAt: number
  readonly result: Deferred.Deferred<A, E>
}

/**
 * A result of a shared read and when that read started (epoch ms): pass `startedAt` as `after` on the next poll.
 *
 * @since 0.6.1
 * @category models
 */
export interface SharedResult<A> {
  readonly value: A
  readonly startedAt: number
}

/**
 * A shared read: `read(key, after, effect)` returns the result of the newest read of `key` when it started after
 * `after` (epoch ms, the `Clock`'s), and otherwise runs `effect` as a new read. A read runs in `scope` (its owner's:
 * closing it interrupts the reads in flight), to its end even when the caller that started it stops waiting, so that
 * the others still get its result (it is bounded by its own timeout). `forget(key)`: the reads of `key` so far are
 * nobody's answer any more (the caller is about to change what they read); the next caller reads again.
 *
 * @since 0.6.1
 * @category constructors
 */
export const makeSharedRead = <A, E>(scope: Scope.Scope) => {
  const newest = new Map<string, Read<A, E>>()
  const answer = (read: Read<A, E>) =>
    Effect.map(Deferred.await(read.result), (value): SharedResult<A> => ({ value, startedAt: read.startedAt }))
  const shared = (key: string, after: number, effect: Effect.Effect<A, E>): Effect.Effect<SharedResult<A>, E> =>
    Effect.gen(function* () {
      const known = newest.get(key)
      if (known !== undefined && known.startedAt > after) return yield* answer(known)
      const startedAt = yield* Clock.currentTimeMillis
      const read: Read<A, E> = { startedAt, result: Deferred.makeUnsafe<A, E>() }
      newest.set(key, read)
      yield* Effect.forkIn(
        Effect.exit(effect).pipe(
          Effect.flatMap((exit) => {
            // a failed read is nobody's answer later on: the next poll reads again
            if (Exit.isFailure(exit) && newest.get(key) === read) newest.delete(key)
            return Deferred.done(read.result, exit)
          }),
          Effect.onInterrupt(() =>
            Effect.suspend(() => {
              if (newest.get(key) === read) newest.delete(key)
              return Deferred.interrupt(read.result)
            })
          )
        ),
        scope
      )
      return yield* answer(read)
    })
  const forget = (key: string): Effect.Effect<void> =>
    Effect.sync(() => {
      newest.delete(key)
    })
  return Object.assign(shared, { forget })
}
