import { TunnelManagerError } from '../errors.ts';
import { sameHostname } from '../hostname.ts';
import { planAllowsTags, type DnsRecord } from './cloudflare-types.ts';

/**
 * The ownership marker (the "registry" in external-dns terms): how a DNS record says that Tunnel
 * Manager created it and for which project, without a TXT record per host.
 *
 * - The comment carries `tunnel-manager:owner=<project>`: at most 84 characters (project names are at
 *   most 63), one line, within the Free plan's 100-character limit.
 * - On paid plans the record also gets the tag `tunnel-manager-owner:<project>`; the comment stays the
 *   source of truth and a tag is only consulted when the comment carries no marker.
 * - A record is ours only if it also points at our tunnel: a marked record pointing elsewhere belongs to
 *   another Tunnel Manager (another tunnel) or was repointed by a human, and is left alone.
 */

export const MARKER_PREFIX = 'tunnel-manager:owner=';
export const OWNER_TAG_NAME = 'tunnel-manager-owner';
/** Cloudflare's limit on Free zones, the smallest of all plans. */
export const COMMENT_LIMIT = 100;

const OWNER = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MARKER_IN_COMMENT = /(?:^|\s)tunnel-manager:owner=([a-z0-9][a-z0-9-]{0,62})(?=\s|$)/g;

function checkOwner(owner: string): void {
  if (!OWNER.test(owner)) {
    throw new TunnelManagerError({
      code: 'INPUT_INVALID',
      message: `The owner ${JSON.stringify(owner)} cannot be written into an ownership marker.`,
      fix: 'Use a project name of lowercase letters, digits and dashes (at most 63 characters), as configured under projects[].name.',
      details: { field: 'owner', owner },
    });
  }
}

/** The comment for a record we create: one line, at most 100 characters. */
export function formatOwnershipComment(owner: string): string {
  checkOwner(owner);
  return `${MARKER_PREFIX}${owner}`;
}

/** The tags for a record we create: one owner tag on paid plans, none on Free. */
export function ownershipTags(owner: string, plan: string | null): string[] {
  checkOwner(owner);
  return planAllowsTags(plan) ? [`${OWNER_TAG_NAME}:${owner}`] : [];
}

/** The one owner named, or null when none is or several disagree. */
function onlyOne(owners: ReadonlySet<string>): string | null {
  const [first, ...others] = owners;
  return first !== undefined && others.length === 0 ? first : null;
}

/** The owner named by the comment's marker, or null (no marker, or markers naming different owners). */
export function parseOwnershipComment(comment: string | null | undefined): string | null {
  if (comment === null || comment === undefined) return null;
  const owners = new Set([...comment.matchAll(MARKER_IN_COMMENT)].flatMap((match) => (match[1] === undefined ? [] : [match[1]])));
  return onlyOne(owners);
}

/** The owner named by an owner tag, or null (none, or several disagreeing). */
export function parseOwnershipTags(tags: readonly string[]): string | null {
  const owners = new Set(
    tags
      .filter((tag) => tag.toLowerCase().startsWith(`${OWNER_TAG_NAME}:`))
      .map((tag) => tag.slice(OWNER_TAG_NAME.length + 1).toLowerCase())
      .filter((owner) => OWNER.test(owner)),
  );
  return onlyOne(owners);
}

export type RecordOwnership =
  | { kind: 'ours'; owner: string }
  /** Marked, but pointing somewhere other than our tunnel. */
  | { kind: 'marked-elsewhere'; owner: string }
  | { kind: 'foreign' };

/** Who a record belongs to, as far as Tunnel Manager is concerned. */
export function classifyRecord(record: Pick<DnsRecord, 'type' | 'content' | 'comment' | 'tags'>, tunnelTarget: string): RecordOwnership {
  const owner = parseOwnershipComment(record.comment) ?? parseOwnershipTags(record.tags);
  if (owner === null) return { kind: 'foreign' };
  const pointsAtTunnel = record.type === 'CNAME' && sameHostname(record.content, tunnelTarget);
  return pointsAtTunnel ? { kind: 'ours', owner } : { kind: 'marked-elsewhere', owner };
}
