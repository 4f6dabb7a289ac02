"""The consent ledger (append-only proof), the current consent state, the other lawful bases a
subject is held under (relationships), objections, and consent receipts."""
