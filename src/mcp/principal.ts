import type { Principal } from '../contract/principal.ts';
import { TunnelManagerError } from '../errors.ts';
import { tokenMatches } from '../secrets/token.ts';


export interface ProjectIdentity {
  name: string;
  role: 'ps' | 'ms';
  tokenHash?: string | undefined;
}

/** Maps bearer tokens to principals through the configured token hashes. */
export class PrincipalDirectory {
  constructor(private readonly projects: ProjectIdentity[]) {}

  authenticate(token: string): Principal | undefined {
    for (const project of this.projects) {
      if (project.tokenHash && tokenMatches(token, project.tokenHash)) return { project: project.name, role: project.role };
    }
    return undefined;
  }

  /** The principal of a named project, for the stdio transport (the operator chose it at launch). */
  byName(name: string): Principal {
    const project = this.projects.find((candidate) => candidate.name === name);
    if (!project) {
      throw new TunnelManagerError({
        code: 'UNAUTHENTICATED',
        message: `No project named ${name} is configured.`,
        fix: `Use one of: ${this.projects.map((p) => p.name).join(', ')}.`,
        details: { project: name },
      });
    }
    return { project: project.name, role: project.role };
  }
}
