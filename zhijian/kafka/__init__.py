"""Kafka plumbing shared by every process (aiokafka only, no Faust): the embedded broker, topics, end
offsets, the rule-set topic."""
