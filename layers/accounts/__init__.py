"""Accounts: users, passwords, sessions and sign-in limits."""
