"""Chat: conversations and messages, and one agent turn (route, reply, run, genesis)."""
