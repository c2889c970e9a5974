import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ErrorShape } from '../errors.ts';

/** The two ways the front end answers a refusal or failure: as a tool result, or as a JSON-RPC error. */

/** A tool's error answer: `isError`, the shape as structured content, and the same in words. */
export function errorResult(shape: ErrorShape): CallToolResult {
  return {
    isError: true,
    content: [{ type: 'text', text: `${shape.code}: ${shape.message}\nfix: ${shape.fix}` }],
    structuredContent: { ...shape },
  };
}

/**
 * A JSON-RPC error whose `data` is the error shape. Not an McpError: its message would carry the "MCP error N:"
 * prefix twice once the client wraps it again.
 */
export function protocolError(code: number, shape: ErrorShape): Error {
  return Object.assign(new Error(`${shape.code}: ${shape.message} fix: ${shape.fix}`), { code, data: shape });
}
