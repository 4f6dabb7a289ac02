"""The mail outbox: messages sealed at rest, sent after commit through a backend (outbox only,
file, SMTP, memory)."""
