import { sortedBy, type Topology } from './topology-model.ts';

function id(prefix: string, name: string): string {
  return `${prefix}_${name.replace(/[^A-Za-z0-9]/g, '_')}`;
}

function label(text: string): string {
  return text.replace(/"/g, "'");
}

/**
 * A Mermaid flowchart of the topology: each network a box holding its containers, published ports as edges
 * from the host, and cloudflared marked. Deterministic: the same topology gives the same text.
 */
export function topologyToMermaid(topology: Topology, cloudflaredContainer: string | null): string {
  const lines = ['flowchart LR', '  host(["host (localhost)"])'];
  const containers = sortedBy(topology.containers, (c) => c.name);
  for (const network of sortedBy(topology.networks, (n) => n.name)) {
    const members = containers.filter((c) => c.networks.some((m) => m.networkName === network.name));
    if (members.length === 0) continue;
    lines.push(`  subgraph ${id('net', network.name)}["network ${label(network.name)}${network.subnet ? ` ${network.subnet}` : ''}"]`);
    for (const container of members) {
      const mark = container.name === cloudflaredContainer ? ' ☁ cloudflared' : '';
      lines.push(`    ${id('c', `${network.name}_${container.name}`)}["${label(container.name)}${mark} (${container.state})"]`);
    }
    lines.push('  end');
  }
  for (const container of containers) {
    for (const port of container.ports) {
      if (port.hostPort === null) continue;
      const first = container.networks[0]?.networkName;
      const node = first ? id('c', `${first}_${container.name}`) : id('c', container.name);
      if (!first) lines.push(`  ${node}["${label(container.name)} (${container.state})"]`);
      lines.push(`  host -- "${port.hostIp ?? '0.0.0.0'}:${port.hostPort} → ${port.containerPort}/${port.protocol}" --> ${node}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
