/** `tunnel-manager --help`: every command and option, and the exit codes (docs/cli.md says the same at length). */
export const USAGE = `tunnel-manager: owns a Cloudflare Tunnel and lets projects publish their services through MCP.

Usage: tunnel-manager <command> [options]

Commands:
  serve [--listen HOST:PORT] [--edge-listen HOST:PORT] [--stdio --project NAME]
                              run the service (supervisor, tunnel, ingress, topology, MCP) until
                              SIGTERM/SIGINT/SIGHUP; without Cloudflare credentials it runs the sandbox
  status [--json]             the tunnel's state as last persisted by the service
  inspect [--json] [--limit N]
                              every actor's state and context, and recent transitions
  machines export --format json|mermaid [--out DIR] [--docs FILE]
                              write each machine's definition (JSON) or state diagram (Mermaid);
                              --docs regenerates docs/machines.md
  migrate                     create or upgrade the database, then exit
  backup [--out FILE]         an online copy of the database (default: <dataDir>/backups/…), service running or not
  restore FILE                put a backup in place of the database (service stopped; the current one is kept)
  recover [--dry-run] [--json]
                              rebuild the route ledger from the ownership markers in Cloudflare and the
                              managed rules in config.yml (service stopped); only adds missing rows
  doctor [--json] [--listen HOST:PORT] [--edge-listen HOST:PORT]
                              check what serve needs (data dir, token and its permissions, API,
                              clock, credentials, cloudflared, addresses, Docker, git); exit 1 on a problem
  config history [--limit N]  the versions of config.yml kept in git
  config rollback COMMIT      restore config.yml as it was at COMMIT (service stopped; when it runs,
                              use the MCP tool tunnel_rollback_config)
  sandbox-cloudflared tunnel --config F --metrics ADDR run ID
                              the sandbox's stand-in cloudflared (what the sandbox runs)
  call TOOL [key=value ...] [--as PROJECT | --token T] [--url URL] [--timeout SECONDS]
                              call one MCP tool; in the sandbox the URL and the project's token come
                              from <dataDir>/sandbox.json (default project: meta-supervisor);
                              gives up after --timeout seconds (default 60)
  token new                   print a new MCP token and the hash to put in the configuration
  token hash                  read a token on stdin, print its hash

Options:
  --config FILE               configuration file (else $TUNNEL_MANAGER_CONFIG, else embedded defaults)
  --data-dir DIR              override dataDir from the configuration (else $TUNNEL_MANAGER_DATA_DIR;
                              default ./data)
  --listen HOST:PORT          serve: MCP over HTTP here instead of mcp.listen (port 0: any free port)
  --edge-listen HOST:PORT     serve, sandbox: where the local edge listens (default 127.0.0.1:8790)
  --stdio --project NAME      serve: MCP over stdio, acting as project NAME
  -h, --help                  this text
  --version                   the version

Exit codes:
  0  success
  1  the operation failed (the error says what happened and how to fix it)
  2  usage error (unknown command or option)
  3  the configuration is invalid or missing
  4  the database was refused (written by a newer version, or a migration failed)
`;
