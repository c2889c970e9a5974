import type Dockerode from 'dockerode';
import { fromCallback, fromPromise, type EventObject } from 'xstate';
import type { SyncReason, TopologyChangeHint as MachineHint, TopologyEvent, TopologyUpdate } from '../../../machines/topology.machine.ts';
import { dockerUnavailable } from '../../docker/topology-discovery.ts';
import { describeDiff } from '../../docker/topology-diff.ts';
import { watchDockerEvents } from '../../docker/topology-events.ts';
import type { TopologyChangeSet, TopologyTracker } from '../../docker/topology-tracker.ts';

/**
 * The real effects of machines/topology.machine.ts, for `topologyMachine.provide(topologyActors(...))`.
 */
export function topologyActors(docker: Dockerode, tracker: TopologyTracker, options: { pingTimeoutMs?: number } = {}) {
  const pingTimeoutMs = options.pingTimeoutMs ?? 5_000;
  return {
    actors: {
      checkEngine: fromPromise<void>(async () => {
        try {
          await withTimeout(docker.ping(), pingTimeoutMs, 'docker ping');
        } catch (error) {
          throw dockerUnavailable(error);
        }
      }),
      syncTopology: fromPromise<TopologyUpdate, { reason: SyncReason }>(async () => toTopologyUpdate(await tracker.resync())),
      applyChanges: fromPromise<TopologyUpdate, { hints: MachineHint[] }>(async ({ input }) =>
        toTopologyUpdate(await tracker.applyChanges(input.hints)),
      ),
      watchEvents: fromCallback<EventObject>(({ sendBack }) => {
        const send = (event: TopologyEvent) => sendBack(event);
        const syncStartedAt = tracker.syncStartedAt();
        const watch = watchDockerEvents(docker, {
          // Replays what happened while the last full sync ran; re-inspecting is idempotent.
          since: syncStartedAt === null ? undefined : Math.floor(syncStartedAt / 1000),
          onHint: (hint) => send({ type: 'DOCKER.CHANGED', hint }),
          onClosed: (error) => send({ type: 'DOCKER.STREAM_CLOSED', error: error?.message ?? null }),
        });
        return () => watch.stop();
      }),
    },
  };
}

export function toTopologyUpdate(change: TopologyChangeSet): TopologyUpdate {
  return { changed: !change.diff.empty, summary: describeDiff(change.diff), change };
}

/** Whether a machine's opaque `change` is the change set this adapter put there (a diff, before and after). */
function isChangeSet(change: unknown): change is TopologyChangeSet {
  if (typeof change !== 'object' || change === null) return false;
  return 'diff' in change && change.diff !== undefined && 'before' in change && change.before !== undefined && 'after' in change && change.after !== undefined;
}

/** The typed change set behind a `topology.changed` event's `update`. */
export function changeSetOf(update: TopologyUpdate): TopologyChangeSet | null {
  return isChangeSet(update.change) ? update.change : null;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
