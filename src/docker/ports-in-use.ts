import { readFileSync } from 'node:fs';
import { parseProcNetTcp } from './listen-address.ts';
import type { Topology } from './topology-model.ts';

/**
 * The host ports something already uses, for `port_allocate` to hand out none of them: every port a process of the
 * host's network namespace listens on (the kernel's tables, as `ss -ltn` shows them), and every host port a running
 * container publishes (Docker forwards it even where no proxy process listens). A port a container listens on only
 * inside its own network namespace is not in use on the host. When /proc cannot be read, only the published ports.
 */
export function portsInUse(topology: Topology): Set<number> {
  const ports = new Set<number>();
  for (const [table, family] of [['tcp', 4], ['tcp6', 6]] as const) {
    let text: string;
    try {
      text = readFileSync(`/proc/self/net/${table}`, 'latin1');
    } catch {
      continue;
    }
    for (const socket of parseProcNetTcp(text, family)) ports.add(socket.port);
  }
  for (const container of topology.containers) {
    if (container.state !== 'running') continue;
    for (const binding of container.ports) if (binding.hostPort !== null) ports.add(binding.hostPort);
  }
  return ports;
}
