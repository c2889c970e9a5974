import { portAnalysisTool } from './port-analysis.ts';

export const recommendConfig = portAnalysisTool({
  name: 'tunnel_recommend_config',
  title: 'How to make a port reachable',
  description:
    'What to change in your Docker setup so that a route to this port would work, as exact commands (docker network connect …, -p …), ' +
    'or confirmation that nothing needs to change.',
  ask: 'recommendConfig',
});
