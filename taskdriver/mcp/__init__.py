"""The MCP face of TaskDriver: the original TaskDriver's tools and prompts, for LLM clients.

`taskdriver mcp` serves them over stdio or streamable HTTP. Every tool is a call of
`taskdriver.client` against a running TaskDriver server; nothing here holds data or imports
the server. `server` builds the MCP server, `tools/` holds the tools by noun, `prompts` the
prompts, `registry` how a tool is declared and called, and `http` the guarded HTTP
transport.
"""

from .server import build_server, mcp_client, serve_stdio

__all__ = ["build_server", "mcp_client", "serve_stdio"]
