// Types of runtime-tuning.js (plain JavaScript: the bin runs it before dist/ is loaded).
export declare const SERVE_NODE_FLAGS: string[];
export declare const SERVE_MALLOC_ENV: Record<string, string>;
export declare function tuneServeRuntime(args: string[]): void;
