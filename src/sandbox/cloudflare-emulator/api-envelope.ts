/**
 * Cloudflare's v4 response envelope and the error answers the emulator gives, with the codes and
 * HTTP statuses the real API uses (as seen in the wild; see docs/cloudflare.md).
 */

export interface ApiErrorItem {
  code: number;
  message: string;
  error_chain?: ApiErrorItem[];
}

export interface ResultInfo {
  page: number;
  per_page: number;
  count: number;
  total_count: number;
  total_pages: number;
}

export interface Envelope {
  success: boolean;
  errors: ApiErrorItem[];
  messages: { code: number; message: string }[];
  result: unknown;
  result_info?: ResultInfo;
}

/** A failure answer: HTTP status plus the envelope's `errors`. Thrown by handlers, turned into a response by the server. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly errors: ApiErrorItem[],
    readonly headers: Record<string, string> = {},
  ) {
    super(errors.map((e) => `${e.code}: ${e.message}`).join('; '));
  }
}

export function successEnvelope(result: unknown, resultInfo?: ResultInfo): Envelope {
  return resultInfo === undefined
    ? { success: true, errors: [], messages: [], result }
    : { success: true, errors: [], messages: [], result, result_info: resultInfo };
}

export function failureEnvelope(errors: ApiErrorItem[]): Envelope {
  return { success: false, errors, messages: [], result: null };
}

/** The catalogue: one constructor per failure the emulator can answer with. */
export const apiFailures = {
  malformedAuthorization: () =>
    new ApiFailure(400, [
      { code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }] },
    ]),
  invalidToken: () => new ApiFailure(403, [{ code: 9109, message: 'Invalid access token' }]),
  missingPermission: () => new ApiFailure(403, [{ code: 10000, message: 'Authentication error' }]),
  noRoute: (path: string) =>
    new ApiFailure(400, [{ code: 7000, message: `No route for that URI: ${path}` }]),
  methodNotAllowed: () => new ApiFailure(405, [{ code: 10405, message: 'Method not allowed for api_token authentication' }]),
  objectNotFound: (path: string) =>
    new ApiFailure(404, [{ code: 7003, message: `Could not route to ${path}, perhaps your object identifier is invalid?` }]),
  recordNotFound: () => new ApiFailure(404, [{ code: 81044, message: 'Record does not exist.' }]),
  tunnelNotFound: () => new ApiFailure(404, [{ code: 1003, message: 'Tunnel not found' }]),
  invalidJson: () => new ApiFailure(400, [{ code: 9207, message: 'Request body is invalid.' }]),
  validation: (message: string, code = 1004) =>
    new ApiFailure(400, [{ code: 1004, message: 'DNS Validation Error', error_chain: [{ code, message }] }]),
  invalidRecordType: (type: string) => new ApiFailure(400, [{ code: 9000, message: `DNS record type "${type}" is invalid.` }]),
  invalidName: (message: string) => new ApiFailure(400, [{ code: 9005, message }]),
  invalidCnameContent: () => new ApiFailure(400, [{ code: 9007, message: 'Content for CNAME record is invalid.' }]),
  invalidIpContent: (type: string) => new ApiFailure(400, [{ code: 9006, message: `Content for ${type} record is invalid. Must be a valid IP${type === 'AAAA' ? 'v6' : 'v4'} address.` }]),
  commentTooLong: (limit: number) =>
    new ApiFailure(400, [{ code: 9313, message: `DNS record comment exceeds the maximum length of ${limit} characters.` }]),
  tagsNotAllowed: (count: number) =>
    new ApiFailure(400, [{ code: 9314, message: `DNS record has ${count} tags, exceeding the quota of 0.` }]),
  nameConflict: () =>
    new ApiFailure(400, [
      {
        code: 81053,
        message:
          'An A, AAAA, or CNAME record with that host already exists. For more details, refer to <https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/>.',
      },
    ]),
  identicalRecord: () => new ApiFailure(400, [{ code: 81058, message: 'An identical record already exists.' }]),
  invalidTunnelConfiguration: (message: string) => new ApiFailure(400, [{ code: 1056, message: `Invalid tunnel configuration: ${message}` }]),
  rateLimited: (retryAfterSeconds: number) =>
    new ApiFailure(429, [{ code: 971, message: 'Please wait and consider throttling your request speed' }], {
      'retry-after': String(retryAfterSeconds),
    }),
  internal: (status = 500) => new ApiFailure(status, [{ code: 10002, message: 'An unknown error has occurred' }]),
};
