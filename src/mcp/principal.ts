import { TunnelManagerError } from '../errors.ts';
import { tokenMatches } from '../secrets/token.ts';

/** Who is calling: always derived from the transport (bearer token, or fixed at launch for stdio), never from arguments. */
export interface Principal {
  project: string;
  role: 'ps' | 'ms';
}

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

export function isMetaSupervisor(principal: Principal): boolean {
  return principal.role === 'ms';
}
