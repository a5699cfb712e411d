"""The durable record in SQL: tables, idempotent writes, the claim and appeal steps."""
