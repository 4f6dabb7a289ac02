"""The mail outbox: messages sealed at rest, sent after commit through a backend (console,
file, SMTP, memory)."""
