"""Billing: what calls cost (usage totals from the ledger); budgets come here too."""
