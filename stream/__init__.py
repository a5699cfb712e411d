"""The Faust stream worker: app, topics, tables, agents, worker views."""
