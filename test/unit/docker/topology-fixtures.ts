import type { DockerContainer, DockerNetwork, Topology } from '../../../src/docker/topology-model.ts';

/** Small hand-built topologies for the pure docker modules. */
export function network(name: string, extra: Partial<DockerNetwork> = {}): DockerNetwork {
  return { id: `${name}-id`, name, driver: 'bridge', subnet: null, internal: false, labels: {}, ...extra };
}

export function container(name: string, networks: string[], extra: Partial<DockerContainer> = {}): DockerContainer {
  return {
    id: `${name}-id`,
    name,
    image: 'local/app:1',
    state: 'running',
    networkMode: 'default',
    labels: {},
    extraHosts: [],
    networks: [...networks].sort().map((n) => ({ networkId: `${n}-id`, networkName: n, aliases: [], ipAddress: null })),
    ports: [],
    command: null,
    ...extra,
  };
}

export function topology(containers: DockerContainer[], networks = ['bridge', 'edge', 'app'].map((n) => network(n))): Topology {
  return { networks, containers };
}
