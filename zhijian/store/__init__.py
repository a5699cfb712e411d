"""The durable record in SQL: one schema (``schema``), numbered migrations (``migrations``), repositories
composed over one engine (``Database``), pure state machines (``states``), errors with a kind (``errors``)."""
