"""Encryption: the key hierarchy (master → tenant → subject × retention class), AES-256-GCM
sealing, blind indexes, and the keystore that holds wrapped keys apart from the data store."""
