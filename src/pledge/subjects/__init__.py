"""The subject vault: data subjects, their identities, encrypted fields and interactions."""
